"""``ngas://host:port/prefix`` URIs.

``ngas://`` talks plain HTTP to NGAS, ``ngas+https://`` HTTPS. The path (without
its leading slash) is a path-like NGAS file id or a prefix of ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mlpipe.storage.errors import BadUri

SCHEMES = {"ngas": "http", "ngas+http": "http", "ngas+https": "https"}
DEFAULT_PORT = 7777


@dataclass(frozen=True)
class NgasUri:
    """A parsed ``ngas://`` URI: server base URL and file id / prefix."""

    base_url: str
    path: str

    @property
    def netloc(self) -> str:
        return self.base_url.split("://", 1)[1]

    def child(self, relative: str) -> str:
        """The file id of ``relative`` below this URI's path."""
        relative = relative.strip("/")
        if not self.path:
            return relative
        return f"{self.path}/{relative}" if relative else self.path


def parse_ngas_uri(uri: str) -> NgasUri:
    """Split ``ngas://host:port/a/b`` into ``("http://host:port", "a/b")``.

    Raises :class:`BadUri` with the URI and the expected form when malformed.
    """
    expected = "expected ngas://HOST:PORT/PATH (or ngas+https://...)"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise BadUri(f"bad NGAS URI {uri!r}: {exc}; {expected}") from None
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise BadUri(f"bad NGAS URI {uri!r}: scheme {parts.scheme!r} is not ngas; {expected}")
    if not parts.hostname:
        raise BadUri(f"bad NGAS URI {uri!r}: no host; {expected}")
    if parts.query or parts.fragment:
        raise BadUri(f"bad NGAS URI {uri!r}: query strings and fragments are not allowed")
    path = unquote(parts.path).strip("/")
    if any(seg in (".", "..") for seg in path.split("/")) or "//" in path:
        raise BadUri(f"bad NGAS URI {uri!r}: empty, '.' or '..' path segments are not allowed")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return NgasUri(base_url=f"{scheme}://{host}:{port or DEFAULT_PORT}", path=path)
