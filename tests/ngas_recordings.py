"""Compare live NGAS answers (the double's) with the recordings of real NGAS 12.0."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

RECORDINGS = Path(__file__).resolve().parent / "ngas_double" / "recordings"


def parse_http(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    if not _:
        head, _, body = raw.partition(b"\n\n")
    lines = head.decode().splitlines()
    assert lines[0].startswith("HTTP/1.0 "), lines[0]
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def recorded(name: str) -> tuple[int, dict[str, str], bytes]:
    return parse_http((RECORDINGS / name).read_bytes())


def live(url: str, method: str, target: str, body: bytes = b"", headers: str = "") -> tuple:
    host, port = url.split("://")[1].split(":")
    req = f"{method} {target} HTTP/1.0\r\nHost: {host}\r\n{headers}"
    if method == "POST" and "Content-Length" not in headers:
        req += f"Content-Length: {len(body)}\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(req.encode() + b"\r\n" + body)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return parse_http(b"".join(chunks))


def status_attrs(body: bytes) -> dict[str, str]:
    return dict(ET.fromstring(body).find("Status").attrib)


def same_shape(rec, got, *, body_xml: bool = True) -> None:
    assert got[0] == rec[0]
    assert list(got[1]) == list(rec[1]), "same headers in the same order"
    if body_xml:
        r, g = status_attrs(rec[2]), status_attrs(got[2])
        assert list(g) == list(r)
        for k in ("Status", "State", "SubState", "Version"):
            assert g[k] == r[k], k
