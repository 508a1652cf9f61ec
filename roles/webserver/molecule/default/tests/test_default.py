"""Checks of the webserver role: TLS, redirect, headers, limits, and the application's unit.

Requests go from the controller to the container's address with the site CA
(``MOLECULE_EPHEMERAL_DIRECTORY/site-ca/ca.pem``) and the TLS name ``localhost``
(one of the certificate's names), byte for byte (``http.client``).
"""

import contextlib
import http.client
import os
import re
import socket
import ssl
import time
from pathlib import Path

import pytest

CA = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "site-ca", "ca.pem")
NAME = "localhost"


@pytest.fixture(scope="module")
def address(host):
    out = host.check_output("hostname -I")
    return out.split()[0]


def context(**kw):
    ctx = ssl.create_default_context(cafile=str(CA))
    for key, value in kw.items():
        setattr(ctx, key, value)
    return ctx


class _Https(http.client.HTTPSConnection):
    """HTTPS to ``address`` verifying the certificate for ``NAME``."""

    def __init__(self, address, ctx=None, timeout=20):
        super().__init__(NAME, 443, context=ctx or context(), timeout=timeout)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, 443), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=NAME)


def request(address, method, path, headers=None, body=None):
    conn = _Https(address)
    try:
        conn.putrequest(method, path)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            with contextlib.suppress(OSError):  # refused before the body was read
                conn.send(body)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def test_certificate_chains_to_the_site_ca_with_the_hosts_names(host, address):
    sock = socket.create_connection((address, 443), 10)
    with context().wrap_socket(sock, server_hostname=NAME) as tls:
        cert = tls.getpeercert()
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    names = {v for k, v in cert["subjectAltName"]}
    assert {host.backend.get_hostname(), "localhost", "127.0.0.1"} <= names, names
    issuer = dict(x[0] for x in cert["issuer"])
    assert issuer["commonName"] == "mlpipe site CA"
    key = host.file("/etc/ssl/mlpipe-web/site.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)


def test_old_tls_is_refused(address):
    old = context(minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)
    sock = socket.create_connection((address, 443), 10)
    with pytest.raises(ssl.SSLError):
        old.wrap_socket(sock, server_hostname=NAME).close()
    sock.close()


def test_http_redirects_to_the_public_https_url(address):
    conn = http.client.HTTPConnection(address, 80, timeout=10)
    conn.request("GET", "/models?x=1")
    resp = conn.getresponse()
    assert resp.status == 301
    assert resp.getheader("Location") == "https://results.example.test/models?x=1"
    conn.close()


def test_health_through_nginx_with_hsts_and_security_headers(address):
    status, headers, body = request(address, "GET", "/healthz")
    assert status == 200 and body == b'{"status":"ok"}'
    names = [k.lower() for k, _ in headers]
    got = {k.lower(): v for k, v in headers}
    assert got["strict-transport-security"] == "max-age=31536000"
    assert "default-src 'none'" in got["content-security-policy"]
    assert got["x-content-type-options"] == "nosniff" and got["x-frame-options"] == "DENY"
    for once in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert names.count(once) == 1, once
    assert got["server"] == "nginx"  # no version (server_tokens off)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_write_methods_are_405(address, method):
    status, headers, _ = request(address, method, "/healthz", body=b"")
    assert status == 405
    assert "strict-transport-security" in {k.lower() for k, _ in headers}


def test_request_size_limits(address):
    # a body on GET (any other method is 405 before nginx looks at the body)
    assert request(address, "GET", "/healthz", body=b"x" * 2048)[0] == 413
    assert request(address, "GET", "/healthz", headers={"X-Big": "a" * 16384})[0] == 400
    assert request(address, "GET", "/" + "a" * 16384)[0] == 414


def test_rate_limit_answers_429(address):
    time.sleep(3)  # let the bucket of earlier tests drain (5 r/s, burst 10)
    statuses = [request(address, "GET", "/healthz")[0] for _ in range(40)]
    assert 429 in statuses and statuses[0] == 200, statuses


def test_slow_headers_are_cut_off(address):
    sock = context().wrap_socket(socket.create_connection((address, 443), 30), server_hostname=NAME)
    start = time.monotonic()
    closed_after = None
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        while time.monotonic() - start < 20:
            sock.sendall(b"X")
            time.sleep(1)
    except OSError:
        closed_after = time.monotonic() - start
    finally:
        sock.close()
    assert closed_after is not None and closed_after < 5 + 4, closed_after


def test_application_is_on_the_loopback_only_as_its_own_user(host, address):
    with pytest.raises(OSError):
        socket.create_connection((address, 8000), 5).close()
    probe = "import socket; socket.create_connection(('127.0.0.1', 8000), 5)"
    assert host.run(f'python3 -c "{probe}"').rc == 0
    pid = host.check_output("systemctl show -p MainPID --value mlpipe-web.service")
    uid = re.search(r"^Uid:\s+(\d+)", host.file(f"/proc/{pid}/status").content_string, re.M)
    assert uid.group(1) == host.check_output("id -u mlpipe-web")
    assert host.file("/etc/mlpipe-web/credentials.env").mode == 0o640
    assert host.file("/etc/mlpipe-web/credentials.env").group == "mlpipe-web"


def test_application_unit_is_sandboxed(host):
    out = host.check_output("systemd-analyze security mlpipe-web.service 2>&1 | tail -1")
    level = float(re.search(r"exposure level for \S+: ([0-9.]+)", out).group(1))
    assert level <= 4.0, out
