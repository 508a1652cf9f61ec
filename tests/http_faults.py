"""An HTTP proxy in front of a real server that answers 503 (or ``status``) to chosen requests
and records every request it receives."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class FaultyProxy:
    """Forwards HTTP to ``upstream``, answering ``status`` (503) to ``fail`` = (method, path regex)
    and to every request for which ``deny(method, path)`` is true.

    ``failed`` counts the requests answered so; ``seen`` lists (method, path) of every
    request received. Use as a context manager.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.fail: tuple[str, str] | None = None
        self.deny: Callable[[str, str], bool] | None = None
        self.status = 503
        self.failed = 0
        self.seen: list[tuple[str, str]] = []
        self._seen_lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return None

            def _forward(self) -> None:
                with proxy._seen_lock:
                    proxy.seen.append((self.command, self.path))
                fail, deny = proxy.fail, proxy.deny
                if (fail and self.command == fail[0] and re.search(fail[1], self.path)) or (
                    deny and deny(self.command, self.path)
                ):
                    proxy.failed += 1
                    self.send_response(proxy.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                resp = requests.request(
                    self.command, proxy.upstream + self.path, headers=headers, data=body, timeout=60
                )
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultyProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
