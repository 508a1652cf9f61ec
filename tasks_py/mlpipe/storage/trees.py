"""Immutable directory trees in the read cache, and the pointers that name them.

A *tree* is a directory of files that never changes once complete: a registered
model version's files, the artifacts of a finished run. It is identified by
(server, kind, name, version), e.g. (tracking server, ``model``, model name,
version number), and lives in ``<cache dir>/trees/ab/<key>/``.

Filling is all or nothing: ``fill`` downloads into a fresh temporary directory
inside the cache (``trees/.tmp-<key>-<pid>-<n>``, same filesystem), the sizes
are recorded as the tree's manifest, the directory is renamed into place and
only then recorded in the index. A tree in the index is therefore complete; a
failed or killed fill leaves no entry (a killed one leaves its temporary
directory behind). On lookup every file's size is checked against the manifest;
a tree that does not match is forgotten, and the caller fetches it again. Trees
count towards ``[cache] max_size`` and are evicted least recently used together
with the cached files.

A *pointer* is a small resolution with the time it was made (a model alias ->
the version it pointed to): what ``bad`` and ``offline`` modes use instead of
asking the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlpipe.storage import space
from mlpipe.storage.cache import ReadCache
from mlpipe.storage.errors import CacheFull

Fill = Callable[[Path], Mapping[str, str]]


@dataclass(frozen=True)
class Tree:
    """A complete cached tree: read its files, never modify them."""

    key: str
    path: Path
    size: int
    files: int
    meta: Mapping[str, str]  # what the filler recorded (e.g. the model version's run id)
    fetched_at: float
    fetched_now: bool = False  # True when this call downloaded it


@dataclass(frozen=True)
class TreeInfo:
    """One row of the index (for listings)."""

    server: str
    kind: str
    name: str
    version: str
    size: int
    last_access: float


@dataclass(frozen=True)
class Pointer:
    value: str
    resolved_at: float  # time.time() when the server answered it


def tree_key(server: str, kind: str, name: str, version: str) -> str:
    return hashlib.sha256(f"tree\0{server}\0{kind}\0{name}\0{version}".encode()).hexdigest()


def _manifest(root: Path) -> dict[str, int]:
    """Relative path -> size of every file below ``root``."""
    return {
        p.relative_to(root).as_posix(): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _matches(root: Path, manifest: Mapping[str, int]) -> bool:
    try:
        return all((root / rel).stat().st_size == size for rel, size in manifest.items())
    except OSError:  # a file gone (or the tree itself)
        return False


class TreeStore:
    """The trees and pointers of one :class:`~mlpipe.storage.cache.ReadCache` directory."""

    def __init__(self, cache: ReadCache) -> None:
        self.cache = cache
        (cache.dir / "trees").mkdir(exist_ok=True)

    # ------------------------------------------------------------------ trees
    def get(self, server: str, kind: str, name: str, version: str) -> Tree | None:
        """The complete tree, or None (never downloads; no network at all)."""
        key = tree_key(server, kind, name, version)
        with self.cache.index() as db:
            row = db.execute(
                "SELECT size, manifest, meta, fetched_at FROM trees WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        size, manifest_text, meta_text, fetched_at = row
        manifest: dict[str, int] = json.loads(manifest_text)
        path = self.cache.tree_path(key)
        if not _matches(path, manifest):
            self.cache.drop_tree(key)  # a file gone or truncated: forget the tree
            return None
        with self.cache.index() as db:
            db.execute("UPDATE trees SET last_access = ? WHERE key = ?", (time.time(), key))
        self.cache.count("tree_hits")
        meta: dict[str, str] = json.loads(meta_text)
        return Tree(key, path, int(size), len(manifest), meta, float(fetched_at))

    def put(self, server: str, kind: str, name: str, version: str, fill: Fill) -> Tree:
        """The tree, filled by ``fill(tmp_dir)`` unless another process already did.

        ``fill`` downloads every file into ``tmp_dir`` and returns what to keep
        with the tree; when it raises, nothing is recorded and ``tmp_dir`` is
        removed.
        """
        key = tree_key(server, kind, name, version)
        what = f"caching {kind} {name} {version} of {server}"
        with self.cache.lock(key, what):
            found = self.get(server, kind, name, version)
            if found is not None:
                return found  # filled by another process while this one waited
            tmp = self.cache.dir / "trees" / f".tmp-{key}-{os.getpid()}-{time.monotonic_ns()}"
            self.cache.make_room(0, what, keep=key)  # the reserve; the size is not known yet
            tmp.mkdir()
            try:
                try:
                    meta = dict(fill(tmp))
                except OSError as exc:
                    if not space.is_no_space(exc):
                        raise
                    raise CacheFull(
                        f"{what}: no space left in the cache directory {self.cache.dir} "
                        f"({space.free_bytes(self.cache.dir)} bytes free, [cache] min_free = "
                        f"{self.cache.min_free}); nothing was kept. Free space there, lower "
                        "[cache] max_size or move the cache ([cache] dir, MLPIPE_CACHE_DIR)"
                    ) from None
                manifest = _manifest(tmp)
                final = self.cache.tree_path(key)
                final.parent.mkdir(exist_ok=True)
                if final.exists():  # left by a process killed before it recorded the tree
                    shutil.rmtree(final)
                tmp.rename(final)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            size = sum(manifest.values())
            now = time.time()
            with self.cache.index() as db:
                db.execute(
                    "INSERT OR REPLACE INTO trees VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        server,
                        kind,
                        name,
                        version,
                        size,
                        json.dumps(manifest),
                        json.dumps(meta),
                        now,
                        now,
                    ),
                )
            self.cache.count("tree_downloads")
            self.cache.count("bytes_downloaded", size)
        self.cache.evict(keep=key)
        return Tree(key, final, size, len(manifest), meta, now, fetched_now=True)

    def entries(self) -> list[TreeInfo]:
        """Every cached tree, least recently used first."""
        with self.cache.index() as db:
            rows = db.execute(
                "SELECT server, kind, name, version, size, last_access FROM trees "
                "ORDER BY last_access"
            ).fetchall()
        return [TreeInfo(*row) for row in rows]

    # --------------------------------------------------------------- pointers
    def remember(self, server: str, kind: str, name: str, pointer: str, value: str) -> None:
        """Record that ``pointer`` of ``name`` resolved to ``value`` now."""
        with self.cache.index() as db:
            db.execute(
                "INSERT OR REPLACE INTO pointers VALUES (?, ?, ?, ?, ?, ?)",
                (server, kind, name, pointer, value, time.time()),
            )

    def recall(self, server: str, kind: str, name: str, pointer: str) -> Pointer | None:
        """The last recorded resolution of ``pointer``, or None."""
        with self.cache.index() as db:
            row = db.execute(
                "SELECT value, resolved_at FROM pointers "
                "WHERE server = ? AND kind = ? AND name = ? AND pointer = ?",
                (server, kind, name, pointer),
            ).fetchone()
        return None if row is None else Pointer(str(row[0]), float(row[1]))


__all__ = ["Fill", "Pointer", "Tree", "TreeInfo", "TreeStore", "tree_key"]
