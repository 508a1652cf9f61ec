"""A fault gate in front of a real NGAS: the double's fault hooks for a server that has none.

``NgasGate(upstream_url, root=...)`` listens on 127.0.0.1 and forwards every
request to ``upstream_url`` byte for byte (request head, body and answer unchanged,
except that each connection carries one request: ``Connection: close`` both ways).
Its ``faults`` are the double's :class:`ngas_double.server.Faults`, applied on the
wire as the double applies them in its handlers:

* ``fail_5xx``, and ``fail_archive_after`` for QARCHIVE: answered 503 by the gate
  (the body read and dropped), never forwarded;
* ``die_mid_upload``: half of a QARCHIVE body forwarded, then both connections
  dropped: the real server sees a client that broke off;
* ``slow_archive``: a QARCHIVE waits that long before it is forwarded;
* ``hold_retrieve``: every RETRIEVE waits for the event before it is forwarded;
* ``corrupt_retrieve`` / ``truncate_retrieve`` / ``slow_retrieve``: a 200 RETRIEVE
  answer with one byte flipped at the middle / cut after half, then the connection
  dropped / spread over that many seconds.

``request_log`` (under ``lock``) lists (command, parameters) of every request, as the
double's does; ``count(command)`` counts them; ``staging_files()`` lists what is in
the given staging directories of the real server.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ngas_double.server import Faults

BLOCK = 256 * 1024


def _read_head(f) -> bytes:  # noqa: ANN001 (a socket's binary file)
    """The head of an HTTP message up to and including the blank line (b"" at EOF)."""
    lines = []
    while True:
        line = f.readline(65537)
        if not line:
            return b""
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _header(head: bytes, name: str) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name.lower().encode():
            return value.strip().decode("latin-1")
    return None


def _closing(head: bytes) -> bytes:
    """``head`` with its Connection header replaced by ``Connection: close``."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [ln for ln in lines if not ln.lower().startswith((b"connection:", b"keep-alive:"))]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n"


def _copy(src, dst: socket.socket, size: int | None, pause: float = 0.0) -> int:  # noqa: ANN001
    """Copy ``size`` bytes (or to EOF when None) from file ``src`` to ``dst``."""
    sent = 0
    while size is None or sent < size:
        block = src.read(BLOCK if size is None else min(BLOCK, size - sent))
        if not block:
            break
        if pause:
            time.sleep(pause)  # a slow link, not a wait for readiness
        dst.sendall(block)
        sent += len(block)
    return sent


class NgasGate:
    def __init__(self, upstream_url: str, root: Path | None = None) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.root = root
        self.faults = Faults()
        self.lock = threading.Lock()
        self.request_log: list[tuple[str, dict[str, str]]] = []
        self._server: socketserver.ThreadingTCPServer | None = None
        self.url = ""

    # ------------------------------------------------------------- the double's API
    def count(self, command: str | None = None) -> int:
        """Requests received (for ``command`` only, if given)."""
        with self.lock:
            return sum(1 for c, _ in self.request_log if command in (None, c))

    def staging_files(self) -> list[Path]:
        if self.root is None:
            return []
        return [p for d in self.root.rglob("staging") if d.is_dir() for p in d.iterdir()]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> NgasGate:
        gate = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):
                    gate._handle(self.request, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.faults.clear()  # releases a held RETRIEVE
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------------- requests
    def _handle(self, client: socket.socket, rfile) -> None:  # noqa: ANN001
        head = _read_head(rfile)
        if not head:
            return
        method, target = head.split(b" ", 2)[:2]
        parts = urlsplit(target.decode("latin-1"))
        command = parts.path.strip("/").split("/", 1)[0]
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self.lock:
            self.request_log.append((command, params))
        length_text = _header(head, "Content-Length")
        length = int(length_text) if length_text is not None else None
        if length is None and _header(head, "Transfer-Encoding"):
            # mlpipe sends every body with a Content-Length; anything else is refused,
            # never forwarded half-understood
            client.sendall(b"HTTP/1.0 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
            return
        faults = self.faults
        if faults.take("fail_5xx") or (command == "QARCHIVE" and faults.archive_refused()):
            if length:
                rfile.read(length)
            body = b"Service Unavailable"
            client.sendall(
                b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            return
        if command == "QARCHIVE" and faults.slow_archive:
            time.sleep(faults.slow_archive)  # a slow server, not a wait for readiness
        if command == "RETRIEVE":
            hold = faults.hold_retrieve
            if hold is not None and not hold.wait(timeout=120):
                client.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                return
        die = command == "QARCHIVE" and bool(length) and faults.take("die_mid_upload")
        with socket.create_connection(self.upstream, timeout=300) as up:
            up.sendall(_closing(head))
            if die:
                assert length is not None
                _copy(rfile, up, length // 2)
                # both connections dropped with no answer: a client that broke off
                up.shutdown(socket.SHUT_RDWR)
                client.shutdown(socket.SHUT_RDWR)
                return
            if length is not None:
                _copy(rfile, up, length)
            self._answer(command, up, client)

    def _answer(self, command: str, up: socket.socket, client: socket.socket) -> None:
        upfile = up.makefile("rb")
        head = _read_head(upfile)
        if not head:
            return
        status = head.split(b" ", 2)[1]
        length_text = _header(head, "Content-Length")
        length = int(length_text) if length_text is not None else None
        client.sendall(_closing(head))
        faults = self.faults
        if command != "RETRIEVE" or status != b"200" or length is None:
            _copy(upfile, client, length)
            return
        corrupt = faults.take("corrupt_retrieve")
        truncate = faults.take("truncate_retrieve")
        pause = faults.slow_retrieve * BLOCK / max(length, 1)  # per block
        if truncate:
            _copy(upfile, client, length // 2, pause)
            client.shutdown(socket.SHUT_RDWR)
            return
        if corrupt:
            middle = length // 2
            _copy(upfile, client, middle, pause)
            byte = upfile.read(1)
            client.sendall(bytes([byte[0] ^ 0xFF]) if byte else b"")
            _copy(upfile, client, length - middle - 1, pause)
            return
        _copy(upfile, client, length, pause)
