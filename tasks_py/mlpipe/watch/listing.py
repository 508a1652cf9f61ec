"""Directory listings of an FTP server -> :class:`RemoteFile` (regular files only).

``MLSD`` (RFC 3659) gives machine-readable facts; servers without it answer
``LIST`` in the Unix ``ls -l`` form or the DOS/IIS form. Lines that are not a
regular file (directories, links, ``total N``, unknown formats) give None.
The modification time is kept as the server wrote it: it is compared only
with earlier listings of the same server (``LIST`` has minute precision).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: str  # MLSD modify=YYYYMMDDHHMMSS[.sss] or the LIST date text

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.name, self.size, self.mtime)


def parse_mlsd_line(line: str) -> RemoteFile | None:
    """One ``MLSD`` line (``fact=value;...; name``) -> a file, or None if not a file."""
    facts_text, sep, name = line.rstrip("\r\n").partition(" ")
    if not sep or not name:
        return None
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.strip().lower()] = value.strip()
    if facts.get("type", "").lower() != "file":
        return None
    size = facts.get("size") or facts.get("sizd")
    if size is None or not size.isdigit():
        return None
    return RemoteFile(name, int(size), facts.get("modify", ""))


_UNIX = re.compile(
    r"^(?P<kind>[-dlbcps])[-rwxsStTl+.@]{9,10}\s+\d+\s+(?:\S+\s+){1,2}?(?P<size>\d+)\s+"
    r"(?P<date>[A-Za-z]{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4}))\s(?P<name>.+)$"
)
_DOS = re.compile(
    r"^(?P<date>\d{2}-\d{2}-\d{2,4}\s+\d{1,2}:\d{2}\s*[AP]M)\s+(?P<size><DIR>|\d+)\s+(?P<name>.+)$",
    re.IGNORECASE,
)


def parse_list_line(line: str) -> RemoteFile | None:
    """One ``LIST`` line (Unix ``ls -l`` or DOS form) -> a file, or None if not a file."""
    line = line.rstrip("\r\n")
    if m := _UNIX.match(line):
        if m["kind"] != "-":
            return None
        return RemoteFile(m["name"], int(m["size"]), " ".join(m["date"].split()))
    if m := _DOS.match(line):
        if not m["size"].isdigit():
            return None
        return RemoteFile(m["name"], int(m["size"]), " ".join(m["date"].split()))
    return None


def parse_listing(lines: list[str], mlsd: bool) -> list[RemoteFile]:
    """Every regular file of a listing, in name order."""
    parse = parse_mlsd_line if mlsd else parse_list_line
    files = [f for f in map(parse, lines) if f is not None and f.name not in (".", "..")]
    return sorted(files, key=lambda f: f.name)
