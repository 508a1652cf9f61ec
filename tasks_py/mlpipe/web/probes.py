"""Attacker probes of a results site: every request here must be refused.

Used by the tests (the app alone, and nginx + app on the local cluster) and by
an operator checking a deployment::

    python -m mlpipe.web.probes https://results.example.org --cacert ca.pem \\
        --published mlpipe/weather/predictions/m-v1/x.csv --unpublished raw/x.csv --slow 15

A probe is refused when the answer is a 4xx status (or the server closes the
connection without serving anything) and the body shows nothing it should
not (no ``/etc/passwd`` line, no NGAS status document, no MLflow JSON).
Requests go out byte for byte as written (``http.client``, no URL
normalisation), so ``..``, ``%2e%2e`` and ``%2f`` reach the server unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

REFUSED_STATUSES = frozenset({400, 403, 404, 405, 408, 411, 413, 414, 421, 429, 431, 444, 494})
LEAKS = (b"root:x:0:0", b"NgamsStatus", b'"experiments":', b'"registered_models"', b'"run_id":')


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Outcome:
    probe: Probe
    status: int | None  # None: the server closed the connection
    refused: bool
    detail: str


def probes(published: str, unpublished: list[str]) -> list[Probe]:
    """The probe list. ``published``: an id the site serves (writes to it must fail);
    ``unpublished``: ids NGAS holds that the site must not serve."""
    pub = quote(published, safe="/")
    out = [
        Probe(f"{m} {p}", m, p)
        for m in ("POST", "PUT", "DELETE", "PATCH")
        for p in ("/", "/models", f"/files/{pub}", "/api/runs")
    ]
    out += [Probe(f"{m} /", m, "/") for m in ("OPTIONS", "TRACE", "CONNECT", "PROPFIND")]
    out += [
        Probe("POST with a 2 MiB body", "POST", "/api/models", body=b"x" * (2 * 1024 * 1024)),
        # MLflow's REST API (write and read) and UI through the site
        Probe("MLflow create run", "POST", "/api/2.0/mlflow/runs/create", body=b"{}"),
        Probe("MLflow create model", "POST", "/api/2.0/mlflow/registered-models/create"),
        Probe("MLflow delete model", "DELETE", "/api/2.0/mlflow/registered-models/delete"),
        Probe("MLflow set alias", "POST", "/api/2.0/mlflow/registered-models/alias"),
        Probe("MLflow search (read API)", "GET", "/api/2.0/mlflow/experiments/search"),
        Probe("MLflow ajax API", "GET", "/ajax-api/2.0/mlflow/runs/search"),
        Probe("MLflow artifacts API", "GET", "/api/2.0/mlflow-artifacts/artifacts"),
        Probe("MLflow UI", "GET", "/static-files/index.html"),
        Probe("MLflow UI graphql", "POST", "/graphql", body=b"{}"),
        # NGAS commands through the site
        Probe("NGAS QARCHIVE", "POST", "/QARCHIVE?filename=x.csv&file_id=x.csv", body=b"a,b\n"),
        Probe("NGAS QARCHIVE (GET)", "GET", "/QARCHIVE?filename=x.csv"),
        Probe("NGAS RETRIEVE", "GET", f"/RETRIEVE?file_id={quote(published, safe='')}"),
        Probe("NGAS REMFILE", "GET", f"/REMFILE?file_id={quote(published, safe='')}"),
        Probe("NGAS STATUS", "GET", "/STATUS"),
        Probe("NGAS EXIT", "GET", "/EXIT"),
        Probe("NGAS QUERY", "GET", "/QUERY?query=files_list&format=json"),
        Probe("NGAS command as a file id", "GET", "/files/QARCHIVE?filename=x"),
        Probe("NGAS command below files", "GET", "/files/../RETRIEVE?file_id=x"),
        # path traversal and encodings
        Probe("traversal ..", "GET", "/files/../../../../etc/passwd"),
        Probe("traversal %2e%2e", "GET", "/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
        Probe("traversal %2f", "GET", "/files/..%2f..%2f..%2fetc%2fpasswd"),
        Probe(
            "traversal double-encoded", "GET", "/files/%252e%252e%252f%252e%252e%252fetc%252fpasswd"
        ),
        Probe("traversal backslash", "GET", "/files/..\\..\\etc\\passwd"),
        Probe("absolute path", "GET", "/files//etc/passwd"),
        Probe("absolute path encoded", "GET", "/files/%2fetc%2fpasswd"),
        Probe("traversal after a published id", "GET", f"/files/{pub}/../../../etc/passwd"),
        Probe("traversal from static", "GET", "/static/../../../../etc/passwd"),
        Probe("traversal from plots", "GET", "/plots/runs/..%2f..%2fetc/predicted.png"),
        Probe("NUL byte in the id", "GET", f"/files/{pub}%00.txt"),
        Probe("published id with a suffix", "GET", f"/files/{pub}.bak"),
        Probe("run id that is not one", "GET", "/api/runs/..%2f..%2fexperiments"),
        Probe("unknown model", "GET", "/api/models/not-a-published-model"),
        # oversized requests
        Probe("huge header (64 KiB)", "GET", "/", headers={"X-Big": "a" * 65536}),
        Probe(
            "many headers (200 x 1 KiB)",
            "GET",
            "/",
            headers={f"X-H{i}": "b" * 1024 for i in range(200)},
        ),
        Probe("huge URL (64 KiB)", "GET", "/files/" + "a" * 65536),
        Probe("huge cookie (32 KiB)", "GET", "/", headers={"Cookie": "c=" + "d" * 32768}),
    ]
    for other in unpublished:
        q = quote(other, safe="/")
        out += [
            Probe(f"unpublished id {other}", "GET", f"/files/{q}"),
            Probe(f"unpublished id {other} encoded", "GET", f"/files/{quote(other, safe='')}"),
            Probe(f"unpublished id via ..: {other}", "GET", f"/files/{pub}/../../{q}"),
        ]
    return out


def _connection(
    base: str, timeout: float, context: ssl.SSLContext | None
) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            host, parts.port or 443, timeout=timeout, context=context
        )
    return http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)


def send(
    base: str, probe: Probe, context: ssl.SSLContext | None = None, timeout: float = 20
) -> Outcome:
    """Send one probe as written and judge the answer."""
    conn = _connection(base, timeout, context)
    try:
        conn.putrequest(probe.method, probe.path, skip_accept_encoding=True)
        for key, value in probe.headers.items():
            conn.putheader(key, value)
        if probe.body:
            conn.putheader("Content-Length", str(len(probe.body)))
        conn.endheaders()
        if probe.body:
            # the server may answer and close before reading a refused body
            with contextlib.suppress(OSError):
                conn.send(probe.body)
        resp = conn.getresponse()
        body = resp.read(1024 * 1024)
    except (
        ConnectionError,
        http.client.RemoteDisconnected,
        http.client.BadStatusLine,
        # over TLS, a server closing while the request is still being sent (nginx refusing
        # headers that are too large, say) is an EOF of the TLS stream, not a reset
        ssl.SSLEOFError,
        ssl.SSLZeroReturnError,
    ) as exc:
        return Outcome(probe, None, True, f"connection closed ({exc.__class__.__name__})")
    finally:
        conn.close()
    leaked = [m.decode() for m in LEAKS if m in body]
    refused = resp.status in REFUSED_STATUSES and not leaked
    detail = f"HTTP {resp.status}" + (f", body shows {', '.join(leaked)}" if leaked else "")
    return Outcome(probe, resp.status, refused, detail)


def slowloris(base: str, context: ssl.SSLContext | None, limit: float) -> Outcome:
    """Headers trickled one byte a second: the server must close within ``limit`` seconds."""
    probe = Probe(f"slow headers (closed within {limit:g} s)", "GET", "/")
    parts = urlsplit(base)
    host, port = (
        parts.hostname or "127.0.0.1",
        parts.port or (443 if parts.scheme == "https" else 80),
    )
    raw = socket.create_connection((host, port), timeout=limit + 10)
    sock: socket.socket = context.wrap_socket(raw, server_hostname=host) if context else raw
    start = time.monotonic()
    try:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())
        while time.monotonic() - start < limit + 5:
            sock.sendall(b"X")
            time.sleep(1)
    except OSError:
        elapsed = time.monotonic() - start
        return Outcome(probe, None, elapsed <= limit + 5, f"closed after {elapsed:.0f} s")
    finally:
        sock.close()
    return Outcome(probe, None, False, f"still open after {limit + 5:g} s")


def run(
    base: str,
    published: str,
    unpublished: list[str],
    context: ssl.SSLContext | None = None,
    slow: float = 0,
) -> list[Outcome]:
    """Every probe against ``base`` (and the slow-headers probe when ``slow`` > 0)."""
    results = [send(base, p, context) for p in probes(published, unpublished)]
    if slow > 0:
        results.append(slowloris(base, context, slow))
    return results


def report(results: list[Outcome]) -> str:
    lines = [
        f"  {'refused' if r.refused else 'SERVED '}  {r.probe.name[:70]}: {r.detail}"
        for r in results
    ]
    refused = sum(r.refused for r in results)
    lines.append(f"probes: {refused} of {len(results)} refused")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlpipe.web.probes", description=__doc__)
    parser.add_argument("url", help="the site, e.g. https://127.0.0.1:8443")
    parser.add_argument("--cacert", help="CA certificate to verify the site with")
    parser.add_argument("--published", default="published/file.csv", help="a published file id")
    parser.add_argument("--unpublished", action="append", default=[], help="ids not to serve")
    parser.add_argument("--slow", type=float, default=0, help="slow-headers limit in seconds")
    args = parser.parse_args(argv)
    context = None
    if args.url.startswith("https"):
        context = ssl.create_default_context(cafile=args.cacert)
    results = run(args.url, args.published, args.unpublished, context, args.slow)
    print(report(results))
    return 0 if all(r.refused for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
