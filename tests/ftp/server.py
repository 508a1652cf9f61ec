"""pyftpdlib on 127.0.0.1 in a thread: plain FTP or explicit FTPS, MLSD or LIST only, throttled.

``make_ca(dir, name)`` writes a throwaway CA (``<name>-ca.pem`` / key) with the
``cryptography`` package; ``start_ftp_server(root, tls_ca=...)`` gives the
server a certificate for 127.0.0.1/localhost signed by it.
"""

from __future__ import annotations

import datetime
import ipaddress
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
from pyftpdlib.servers import FTPServer

USER, PASSWORD = "drop", "drop-secret-1"


@dataclass
class Ca:
    cert_file: Path
    key: Any
    cert: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(directory: Path, name: str) -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} test CA"))
        .issuer_name(_name(f"{name} test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name}-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Ca(path, key, cert)


def _server_cert(ca: Ca, directory: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    pem = directory / "server.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return pem


@dataclass
class FtpServer:
    host: str
    port: int
    root: Path
    dtp: type  # the data-connection handler class: set .write_limit (bytes/s, 0 = none)
    user: str = USER
    password: str = PASSWORD
    _server: Any = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def throttle(self, bytes_per_second: int) -> None:
        """Downloads started from now on send at most this many bytes/s (0: no limit)."""
        self.dtp.write_limit = bytes_per_second

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def start_ftp_server(
    root: Path, *, tls_ca: Ca | None = None, mlsd: bool = True, write_limit: int = 0
) -> FtpServer:
    """A server for ``root`` (user ``drop``) on a free port of 127.0.0.1, serving in a thread."""
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm="elr")
    dtp: type = type("Dtp", (ThrottledDTPHandler,), {"write_limit": write_limit})
    attrs: dict[str, Any] = {"authorizer": authorizer, "banner": "mlpipe test FTP"}
    if not mlsd:
        cmds = FTPHandler.proto_cmds
        attrs["proto_cmds"] = {k: v for k, v in cmds.items() if k not in ("MLSD", "MLST")}
    if tls_ca is not None:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler

        base: type = TLS_FTPHandler
        dtp = type("TlsDtp", (TLS_DTPHandler,), {})
        dtp.write_limit = write_limit  # plain attribute: TLS data connections are not throttled
        attrs["certfile"] = str(_server_cert(tls_ca, root.parent))
        attrs["tls_control_required"] = True
        attrs["tls_data_required"] = True
    else:
        base = FTPHandler
    attrs["dtp_handler"] = dtp
    handler = type("Handler", (base,), attrs)
    server = FTPServer(("127.0.0.1", 0), handler)
    host, port = server.address[:2]
    ftp = FtpServer(host, port, root, dtp, _server=server)

    def serve() -> None:
        while not ftp._stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    ftp._thread = threading.Thread(target=serve, name="ftp-server", daemon=True)
    ftp._thread.start()
    return ftp
