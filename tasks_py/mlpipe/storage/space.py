"""Disk space of the read cache: free bytes, "no space" errors, leftovers of killed processes.

Leftovers are what a process killed in the middle of a download leaves in the
cache directory: ``objects/ab/.<key>.<random>.part`` (an NGAS file being
written), ``trees/.tmp-<key>-<pid>-<n>/`` (a tree being filled) and
``trees/.trash-<key>-...`` (a tree being removed). The entry's key is part of the
name, so a leftover whose download lock is free belongs to no running download.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged process may still write on ``directory``'s filesystem."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def is_no_space(exc: BaseException) -> bool:
    """True for "no space left on device" and "disk quota exceeded"."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


@dataclass(frozen=True)
class Leftover:
    path: Path
    key: str  # the cache entry it was for ("" for a tree being removed)
    size: int  # bytes on disk


def _size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:  # removed meanwhile
        return 0


def leftovers(cache_dir: Path) -> list[Leftover]:
    """Every partial download and half-removed tree in ``cache_dir``."""
    found: list[Leftover] = []
    objects = cache_dir / "objects"
    if objects.is_dir():
        for part in objects.glob("*/.*.part"):
            found.append(Leftover(part, part.name[1:].split(".", 1)[0], _size(part)))
    trees = cache_dir / "trees"
    if trees.is_dir():
        for tmp in trees.glob(".tmp-*"):
            found.append(Leftover(tmp, tmp.name[len(".tmp-") :].split("-", 1)[0], _size(tmp)))
        for trash in trees.glob(".trash-*"):
            found.append(Leftover(trash, "", _size(trash)))
    return found


def remove(path: Path) -> None:
    """Remove a leftover file or directory (already gone is fine)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


__all__ = ["NO_SPACE", "Leftover", "free_bytes", "is_no_space", "leftovers", "remove"]
