"""Locks of the read cache: per-entry download locks with a timeout, and reader pins.

* The *download lock* of an entry (``locks/<key>.lock``, :mod:`filelock`) is held
  while one process downloads or removes that entry. A process killed while holding
  it releases it (the kernel drops its ``flock``); a process that hangs does not, so
  waiting for it is bounded by ``[cache] lock_timeout`` and then
  :class:`~mlpipe.storage.errors.CacheLockTimeout` names the lock file and what to do.
* A *pin* (``locks/<key>.pin``, a shared ``flock``) is held by a reader for as long
  as it uses an entry's path. Eviction and pruning take the pin exclusively without
  waiting and skip the entry when a reader holds it, so a pinned path never goes
  missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from mlpipe.storage.errors import CacheLockTimeout


@contextlib.contextmanager
def download_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """Hold the download lock ``path`` (waiting at most ``timeout`` seconds) for ``what``."""
    lock = FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise CacheLockTimeout(
            f"{what}: another process has held the cache lock {path} for more than "
            f"{timeout:g} s; it is probably hung: find it with `fuser {path}` and stop it "
            "(a process that dies releases the lock), or raise [cache] lock_timeout "
            "(MLPIPE_CACHE_LOCK_TIMEOUT) for very slow downloads"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def try_download_lock(path: Path) -> Iterator[bool]:
    """The download lock ``path`` if it is free right now (True), else False; no waiting."""
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


@contextlib.contextmanager
def pin(path: Path) -> Iterator[None]:
    """Hold a shared pin on ``path`` (many readers at once; waits while an evictor checks)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def unpinned(path: Path) -> Iterator[bool]:
    """True (holding the pin exclusively, so no reader can take it) if no reader pins
    ``path`` now, else False; never waits."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


__all__ = ["download_lock", "pin", "try_download_lock", "unpinned"]
