"""Local read cache for NGAS files: every read goes through it.

Layout of the cache directory::

    index.sqlite3            entries (server, file_id, version, checksum, size, last_access)
                             and counters (hits, misses, ...)
    objects/ab/abcdef...     file bytes, one per (server, file_id, version)
    trees/ab/abcdef.../      immutable directory trees: a registered model version's
                             files, a finished run's artifacts (:mod:`mlpipe.storage.trees`)
    locks/abcdef....lock     per-file download locks (filelock)

Rules (``mode`` is the connection mode, see :mod:`mlpipe.storage.probe`):

* an explicit ``version`` is immutable in NGAS: once cached it is served
  without any request, in every mode;
* newest version, ``good``: one QUERY asks NGAS for the newest version; if the
  cached copy is that version it is served, else the new version is downloaded;
* ``bad``: a cached copy is served without asking (a warning says it may be
  stale); a missing file is downloaded;
* ``offline``: the network is never touched; a missing file raises
  :class:`CacheMiss`.

Downloads are verified against NGAS's crc32 before they enter the cache, so a
corrupt transfer never poisons it. Two processes asking for the same file
download it once (the second waits on the file lock, at most ``lock_timeout``
seconds, then finds it cached). The total size (files and trees) is kept under
``max_size`` by evicting the least recently used files and trees; before a
download, entries are evicted until the file fits under ``max_size`` and leaves
``min_free`` bytes free on the filesystem (else :class:`CacheFull`).

Faults (docs/cache.md, "Faults"):

* NGAS unreachable (or 5xx) while a cached copy is present in ``good``/``auto``
  mode: the staleness QUERY is tried once, without retries, and the cached copy
  is served with a warning. A refusal (401/403) stays an error.
* every read compares the file's size, inode and mtime with what was recorded;
  a size mismatch drops the entry, a changed inode or mtime makes the cache
  recompute the crc32 and drop the entry unless it matches: a damaged file is
  downloaded again, never served.
* :meth:`ReadCache.pinned` holds a path safe from eviction while it is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from mlpipe.config import CacheMode
from mlpipe.storage import space
from mlpipe.storage.errors import CacheFull, CacheMiss, NgasUnavailable
from mlpipe.storage.locks import download_lock, pin, try_download_lock, unpinned
from mlpipe.storage.ngas import (
    FileInfo,
    NgasClient,
    checksum_matches,
    client_options,
    crc32_of_file,
    validate_file_id,
)
from mlpipe.storage.probe import BAD, GOOD, OFFLINE, ConnectionMode, ProbeResult, probe
from mlpipe.storage.uri import parse_ngas_uri

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, server TEXT NOT NULL, file_id TEXT NOT NULL, version INTEGER NOT NULL,
    checksum TEXT NOT NULL, size INTEGER NOT NULL, fetched_at REAL NOT NULL,
    last_access REAL NOT NULL, stamp TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS entries_file ON entries (server, file_id, version);
CREATE INDEX IF NOT EXISTS entries_lru ON entries (last_access);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trees (
    key TEXT PRIMARY KEY, server TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    version TEXT NOT NULL, size INTEGER NOT NULL, manifest TEXT NOT NULL, meta TEXT NOT NULL,
    fetched_at REAL NOT NULL, last_access REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trees_lru ON trees (last_access);
CREATE TABLE IF NOT EXISTS pointers (
    server TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, pointer TEXT NOT NULL,
    value TEXT NOT NULL, resolved_at REAL NOT NULL, PRIMARY KEY (server, kind, name, pointer)
);
"""


@dataclass(frozen=True)
class CacheEntry:
    key: str
    server: str
    file_id: str
    version: int
    checksum: str
    size: int
    fetched_at: float
    last_access: float
    stamp: str = ""  # "inode:mtime_ns" of the file when last verified


@dataclass(frozen=True)
class CacheStats:
    directory: Path
    entries: int
    size: int
    max_size: int
    counters: dict[str, float]
    trees: int = 0  # of ``entries`` and ``size``: cached directory trees (model versions, ...)
    leftovers: int = 0  # partial downloads of killed processes (removed by prune), not entries
    leftover_size: int = 0  # their bytes on disk, included in ``size``

    @property
    def hits(self) -> int:
        return int(self.counters.get("hits", 0))

    @property
    def misses(self) -> int:
        return int(self.counters.get("misses", 0))


def _key(server: str, file_id: str, version: int) -> str:
    return hashlib.sha256(f"{server}\0{file_id}\0{version}".encode()).hexdigest()


def entry_key(server: str, file_id: str, version: int) -> str:
    """The key naming a cached NGAS file (its object, lock and pin files)."""
    return _key(server.rstrip("/"), file_id, version)


def _stamp(st: os.stat_result) -> str:
    return f"{st.st_ino}:{st.st_mtime_ns}"


def throughput_counter(server: str) -> str:
    """The counter holding the recent download throughput (MB/s) from ``server``."""
    return f"throughput_mbps:{server.rstrip('/')}"


class ReadCache:
    """A cache directory in front of one or more NGAS servers.

    ``default_url`` is the NGAS server for plain file ids; ``ngas://`` URIs
    name their own server. ``mode`` is ``auto``, ``good``, ``bad`` or
    ``offline``. ``network_requests`` counts HTTP requests made on its behalf.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        default_url: str = "http://127.0.0.1:7777",
        max_size: int = 10 * 1024**3,
        mode: CacheMode = "auto",
        client_options: dict[str, Any] | None = None,
        probe_max_latency_ms: float = 250.0,
        probe_min_throughput_mbps: float = 5.0,
        probe_ttl: float = 60.0,
        min_free: int = 0,
        lock_timeout: float = 600.0,
    ) -> None:
        self.dir = Path(directory)
        self.default_url = default_url.rstrip("/")
        self.max_size = max_size
        self.configured_mode = mode
        self.client_options = client_options or {}
        self.probe_max_latency_ms = probe_max_latency_ms
        self.probe_min_throughput_mbps = probe_min_throughput_mbps
        self.probe_ttl = probe_ttl
        self.min_free = min_free  # bytes a download must leave free on the filesystem
        self.lock_timeout = lock_timeout  # seconds to wait for another process's download
        self._clients: dict[str, NgasClient] = {}
        self._quick: dict[str, NgasClient] = {}  # no retries: staleness checks of cached files
        self._probes: dict[str, tuple[float, ProbeResult]] = {}
        self._warned: set[tuple[str, str]] = set()  # stale warnings given (once per file)
        self._conns = threading.local()  # one index connection per thread
        (self.dir / "objects").mkdir(parents=True, exist_ok=True)
        (self.dir / "locks").mkdir(exist_ok=True)
        # WAL is a property of the database file: switch it on once, with the
        # schema, while no other process can be creating the index too.
        with FileLock(str(self.dir / "locks" / "index.lock"), timeout=60), self._db() as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
            if "stamp" not in columns:  # an index written before the stamps
                db.execute("ALTER TABLE entries ADD COLUMN stamp TEXT NOT NULL DEFAULT ''")

    @classmethod
    def from_config(cls, config: Any = None, mode: CacheMode | None = None) -> ReadCache:
        """The cache described by ``[cache]`` and ``[ngas]`` of the mlpipe config."""
        if config is None:
            from mlpipe.config import load_config

            config = load_config()
        c, n = config.cache, config.ngas
        return cls(
            c.dir,
            default_url=n.url,
            max_size=c.max_size,
            mode=mode or c.mode,
            client_options=client_options(n),
            probe_max_latency_ms=c.probe_max_latency_ms,
            probe_min_throughput_mbps=c.probe_min_throughput_mbps,
            probe_ttl=c.probe_ttl,
            min_free=c.min_free,
            lock_timeout=c.lock_timeout,
        )

    # ------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The index connection of this thread (opened once: a warm hit costs
        two statements, not a connection set-up). Statements autocommit."""
        db: sqlite3.Connection | None = getattr(self._conns, "db", None)
        if db is None or self._conns.pid != os.getpid():  # a forked child opens its own
            db = sqlite3.connect(self.dir / "index.sqlite3", timeout=60, isolation_level=None)
            db.execute("PRAGMA busy_timeout = 60000")
            # WAL (set in __init__) + NORMAL: no fsync per hit; the index can
            # lose the last access times on power loss, never the files'
            # integrity (each entry is re-checked against its file size on lookup).
            db.execute("PRAGMA synchronous = NORMAL")
            self._conns.db, self._conns.pid = db, os.getpid()
        yield db

    def index(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """The index database of this thread (for :mod:`mlpipe.storage.trees`)."""
        return self._db()

    def count(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` to the counter ``name`` (shown by ``mlpipe cache stats``)."""
        with self._db() as db:
            self._count(db, name, amount)

    def _count(self, db: sqlite3.Connection, name: str, amount: float = 1) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )

    def client(self, url: str | None = None) -> NgasClient:
        """The (shared) NGAS client for ``url`` (default: the configured server)."""
        url = (url or self.default_url).rstrip("/")
        if url not in self._clients:
            self._clients[url] = NgasClient(url, **self.client_options)
        return self._clients[url]

    def quick_client(self, url: str) -> NgasClient:
        """A client for ``url`` with the same credentials and no retries."""
        url = url.rstrip("/")
        if url not in self._quick:
            full = self.client(url)
            quick = NgasClient(url, timeout=min(full.timeout, 10.0), retries=0, backoff=0)
            quick.session, quick.username = full.session, full.username
            self._quick[url] = quick
        return self._quick[url]

    @property
    def network_requests(self) -> int:
        """HTTP requests made by this cache's clients so far."""
        clients = [*self._clients.values(), *self._quick.values()]
        return sum(c.requests_sent for c in clients)

    def lock_path(self, key: str) -> Path:
        return self.dir / "locks" / f"{key}.lock"

    def lock(self, key: str, what: str) -> contextlib.AbstractContextManager[None]:
        """The download lock of entry ``key`` (waits at most ``lock_timeout`` seconds)."""
        return download_lock(self.lock_path(key), self.lock_timeout, what)

    def pin(self, key: str) -> contextlib.AbstractContextManager[None]:
        """A reader's pin on entry ``key``: not evicted or pruned while held."""
        return pin(self.dir / "locks" / f"{key}.pin")

    def object_path(self, key: str) -> Path:
        return self.dir / "objects" / key[:2] / key

    def tree_path(self, key: str) -> Path:
        return self.dir / "trees" / key[:2] / key

    def drop_tree(self, key: str) -> None:
        """Forget a tree, then remove its directory (renamed away first: gone at once)."""
        with self._db() as db:
            db.execute("DELETE FROM trees WHERE key = ?", (key,))
        path = self.tree_path(key)
        trash = self.dir / "trees" / f".trash-{key}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            path.rename(trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def _resolve(self, target: str, server: str | None = None) -> tuple[str, str]:
        if server:
            return server.rstrip("/"), validate_file_id(target)
        if "://" in target:
            uri = parse_ngas_uri(target)
            return uri.base_url, validate_file_id(uri.path)
        return self.default_url, validate_file_id(target)

    # --------------------------------------------------------------- modes
    def mode(self, url: str | None = None) -> ConnectionMode:
        """The effective connection mode for ``url`` (probing if configured ``auto``)."""
        if self.configured_mode != "auto":
            return self.configured_mode
        return self.probe(url).mode

    def probe(self, url: str | None = None) -> ProbeResult:
        """Measure the connection to ``url`` (result reused for ``probe_ttl`` seconds)."""
        url = (url or self.default_url).rstrip("/")
        now = time.monotonic()
        cached = self._probes.get(url)
        if cached and now - cached[0] < self.probe_ttl:
            return cached[1]
        with self._db() as db:
            row = db.execute(
                "SELECT value FROM counters WHERE name = ?", (throughput_counter(url),)
            ).fetchone()
        result = probe(
            self.client(url),
            max_latency_ms=self.probe_max_latency_ms,
            min_throughput_mbps=self.probe_min_throughput_mbps,
            recent_throughput_mbps=row[0] if row else None,
        )
        log.info("connection to %s: %s (%s)", url, result.mode, result.reason)
        self._probes[url] = (now, result)
        return result

    # ------------------------------------------------------------- entries
    def _lookup(self, server: str, file_id: str, version: int | None) -> CacheEntry | None:
        sql = "SELECT * FROM entries WHERE server = ? AND file_id = ?"
        args: tuple[Any, ...] = (server, file_id)
        if version is not None:
            sql += " AND version = ?"
            args += (version,)
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY version DESC", args).fetchall()
        for row in rows:
            entry = CacheEntry(*row)
            if self._intact(entry):
                return entry
            self._drop(entry.key)  # file gone, truncated or changed: forget it
        return None

    def _intact(self, entry: CacheEntry) -> bool:
        """True if the entry's file is what was downloaded (crc32 re-checked if it changed)."""
        path = self.object_path(entry.key)
        try:
            st = path.stat()
        except FileNotFoundError:
            log.warning("cached %s version %d is gone from %s", entry.file_id, entry.version, path)
            return False
        if st.st_size != entry.size:
            log.warning(
                "cached %s version %d at %s has %d bytes, the index %d: downloading it again",
                entry.file_id,
                entry.version,
                path,
                st.st_size,
                entry.size,
            )
            return False
        if _stamp(st) == entry.stamp:
            return True
        if not checksum_matches(entry.checksum, crc32_of_file(path)):
            log.warning(
                "cached %s version %d at %s was modified (crc32 differs from the index): "
                "downloading it again",
                entry.file_id,
                entry.version,
                path,
            )
            return False
        with self._db() as db:  # same bytes (e.g. copied back): remember the new stamp
            db.execute("UPDATE entries SET stamp = ? WHERE key = ?", (_stamp(st), entry.key))
        return True

    def _drop(self, key: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
        self.object_path(key).unlink(missing_ok=True)

    def _hit(self, entry: CacheEntry, counter: str = "hits") -> Path:
        with self._db() as db:
            db.execute("UPDATE entries SET last_access = ? WHERE key = ?", (time.time(), entry.key))
            self._count(db, counter)
            if counter != "hits":
                self._count(db, "hits")
        return self.object_path(entry.key)

    # --------------------------------------------------------------- reads
    def fetch(self, target: str, version: int | None = None, server: str | None = None) -> Path:
        """Local path of ``target`` (an NGAS file id or ``ngas://host:port/id``).

        ``server`` (``http://host:port``) overrides the configured NGAS server
        for a plain file id.

        Downloads only when needed and allowed by the connection mode; the
        returned file belongs to the cache: read it, never modify it (use
        :meth:`copy_to` for a private copy, :meth:`pinned` to keep it from being
        evicted while it is read).
        """
        server, file_id = self._resolve(target, server)
        return self._fetch(server, file_id, version)

    @contextlib.contextmanager
    def pinned(
        self, target: str, version: int | None = None, server: str | None = None
    ) -> Iterator[Path]:
        """:meth:`fetch`, the path safe from eviction and pruning (by any process) until exit."""
        server, file_id = self._resolve(target, server)
        with self._pinned(server, file_id, version) as path:
            yield path

    @contextlib.contextmanager
    def _pinned(
        self, server: str, file_id: str, version: int | None, also: Path | None = None
    ) -> Iterator[Path]:
        """:meth:`pinned`; a download on the way also writes ``also`` (see :meth:`copy_to`)."""
        for attempt in range(5):
            if attempt and also is not None:
                also.unlink(missing_ok=True)  # may hold another version than the next fetch
            path = self._fetch(server, file_id, version, also)
            with self.pin(path.name):
                if path.exists():  # not evicted between the fetch and the pin
                    yield path
                    return
        raise CacheFull(
            f"{file_id} from {server} was evicted from the cache {self.dir} again and again "
            "right after downloading it; raise [cache] max_size (MLPIPE_CACHE_MAX_SIZE)"
        )

    def _fetch(
        self, server: str, file_id: str, version: int | None, also: Path | None = None
    ) -> Path:
        cached = self._lookup(server, file_id, version)
        if cached and version is not None:
            return self._hit(cached)
        mode = self.mode(server) if cached or self.configured_mode != OFFLINE else OFFLINE
        if mode == OFFLINE:
            if cached:
                if self.configured_mode == "auto":
                    self._warn_stale(server, file_id, cached, f"NGAS at {server} is unreachable")
                else:
                    log.info("offline: serving cached %s version %d", file_id, cached.version)
                return self._hit(cached, "stale_served")
            with self._db() as db:
                self._count(db, "misses")
            raise CacheMiss(
                f"{file_id}{f' version {version}' if version else ''} from {server} is not in the "
                f"cache {self.dir} and the connection mode is offline; fetch it while online "
                "(MLPIPE_CACHE_MODE=good) or check the id"
            )
        if cached and mode == BAD:
            self._warn_stale(server, file_id, cached, f"bad connection to {server}")
            return self._hit(cached, "stale_served")
        if cached is None:
            return self._download(server, self.client(server).info(file_id, version), also)
        try:  # one try, no retries: the cached copy is there to fall back on
            info = self.quick_client(server).info(file_id, version)
        except NgasUnavailable as exc:
            self._warn_stale(server, file_id, cached, f"NGAS did not answer ({exc})")
            return self._hit(cached, "stale_served")
        if cached.version == info.version and cached.checksum == info.checksum:
            return self._hit(cached)
        return self._download(server, info, also)

    def _warn_stale(self, server: str, file_id: str, cached: CacheEntry, why: str) -> None:
        if (server, file_id) in self._warned:
            return
        self._warned.add((server, file_id))
        log.warning(
            "%s: serving cached %s version %d, which may be stale", why, file_id, cached.version
        )

    # ---------------------------------------------------------------- room
    def _no_room(self, what: str, need: int, free: int) -> CacheFull:
        return CacheFull(
            f"{what}: no room in the cache directory {self.dir}: it needs {need} bytes free "
            f"plus the reserve [cache] min_free = {self.min_free} bytes, the filesystem has "
            f"{free} bytes free after evicting what could be evicted; free space there, move "
            "the cache ([cache] dir, MLPIPE_CACHE_DIR) or lower [cache] min_free"
        )

    def make_room(self, need: int, what: str, keep: str | None = None) -> None:
        """Evict least recently used entries until ``need`` more bytes fit under ``max_size``
        and leave ``min_free`` bytes free on the filesystem; else raise :class:`CacheFull`."""
        if need > self.max_size:
            raise CacheFull(
                f"{what}: {need} bytes do not fit in the cache {self.dir} at all "
                f"([cache] max_size = {self.max_size} bytes); raise [cache] max_size "
                "(MLPIPE_CACHE_MAX_SIZE)"
            )
        self.evict(self.max_size - need, keep=keep, free=need + self.min_free)
        free = space.free_bytes(self.dir)
        if free - self.min_free < need:
            raise self._no_room(what, need, free)

    def _download(self, server: str, info: FileInfo, also: Path | None = None) -> Path:
        """Download ``info`` into the cache (and into ``also``: :meth:`NgasClient.retrieve`)."""
        key = _key(server, info.file_id, info.version)
        path = self.object_path(key)
        what = f"downloading {info.file_id} version {info.version} from {server}"
        with self.lock(key, what):
            entry = self._lookup(server, info.file_id, info.version)
            if entry and entry.checksum == info.checksum:
                return self._hit(entry)  # another process fetched it while we waited
            self.make_room(info.size, what, keep=key)
            start = time.perf_counter()
            try:
                self.client(server).retrieve(info.file_id, path, expected=info, also=also)
            except OSError as exc:
                if not space.is_no_space(exc):
                    raise
                # retrieve removed its partial file; nothing was recorded
                raise self._no_room(what, info.size, space.free_bytes(self.dir)) from None
            seconds = time.perf_counter() - start
            path.chmod(0o444)  # handed out to readers: read, never modify
            stamp = _stamp(path.stat())
            now = time.time()
            with self._db() as db:
                db.execute(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        server,
                        info.file_id,
                        info.version,
                        info.checksum,
                        info.size,
                        now,
                        now,
                        stamp,
                    ),
                )
                self._count(db, "misses")
                self._count(db, "downloads")
                self._count(db, "bytes_downloaded", info.size)
                if info.size >= 1024 * 1024 and seconds > 0:
                    mbps = info.size / seconds / 1e6
                    db.execute(
                        "INSERT INTO counters (name, value) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE "
                        "SET value = 0.5 * value + 0.5 * excluded.value",
                        (throughput_counter(server), mbps),
                    )
        self.evict(keep=key)
        return path

    def copy_to(
        self, target: str, dest: Path | str, version: int | None = None, server: str | None = None
    ) -> Path:
        """Fetch ``target`` through the cache and copy it to ``dest`` (atomically).

        A file that has to be downloaded is written to the cache and to ``dest``'s
        temporary name as it arrives (one pass, docs/performance.md); a cached one
        is copied from the cache.
        """
        server, file_id = self._resolve(target, server)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        try:
            tmp.unlink(missing_ok=True)
            with self._pinned(server, file_id, version, also=tmp) as src:
                if not tmp.exists():  # served from the cache, or the second copy failed
                    shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    # ---------------------------------------------------------- maintenance
    def entries(self) -> list[CacheEntry]:
        with self._db() as db:
            return [
                CacheEntry(*r) for r in db.execute("SELECT * FROM entries ORDER BY last_access")
            ]

    def stats(self) -> CacheStats:
        """Entries, trees and their size; the size includes the leftovers of killed downloads."""
        with self._db() as db:
            n, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
            trees, tree_size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM trees"
            ).fetchone()
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        left = space.leftovers(self.dir)
        left_size = sum(item.size for item in left)
        total = size + tree_size + left_size
        return CacheStats(
            self.dir, n + trees, total, self.max_size, counters, trees, len(left), left_size
        )

    def _remove(self, key: str, is_tree: bool) -> bool:
        """Drop one entry unless a reader pins it or a download holds its lock."""
        with (
            unpinned(self.dir / "locks" / f"{key}.pin") as free,
            try_download_lock(self.lock_path(key)) as unlocked,
        ):
            if not (free and unlocked):
                log.info("cache entry %s is in use: not removed", key)
                return False
            if is_tree:
                self.drop_tree(key)
            else:
                self._drop(key)
            return True

    def evict(
        self, max_size: int | None = None, keep: str | None = None, free: int = 0
    ) -> tuple[int, int]:
        """Remove least recently used files and trees until the total is <= ``max_size``
        and (``free`` > 0) the filesystem has ``free`` bytes free.

        Returns (files and trees removed, bytes freed). ``keep`` is a key never evicted;
        entries pinned by a reader or being downloaded are skipped.
        """
        limit = self.max_size if max_size is None else max_size
        removed = freed = 0

        def enough(total: int) -> bool:
            return total <= limit and (free <= 0 or space.free_bytes(self.dir) >= free)

        with download_lock(self.dir / "locks" / "evict.lock", self.lock_timeout, "evicting"):
            with self._db() as db:
                total = db.execute(
                    "SELECT (SELECT COALESCE(SUM(size), 0) FROM entries)"
                    " + (SELECT COALESCE(SUM(size), 0) FROM trees)"
                ).fetchone()[0]
                if enough(total):
                    return 0, 0
                victims = db.execute(
                    "SELECT key, size, last_access, 0 FROM entries UNION ALL "
                    "SELECT key, size, last_access, 1 FROM trees ORDER BY 3 ASC"
                ).fetchall()
            for key, size, _, is_tree in victims:
                if enough(total):
                    break
                if key == keep or not self._remove(key, bool(is_tree)):
                    continue
                total -= size
                removed += 1
                freed += size
            if removed:
                with self._db() as db:
                    self._count(db, "evictions", removed)
        return removed, freed

    def remove_leftovers(self) -> tuple[int, int]:
        """Remove the partial downloads of killed processes: (files/dirs removed, bytes)."""
        removed = freed = 0
        for item in space.leftovers(self.dir):
            if item.key:
                with try_download_lock(self.lock_path(item.key)) as unlocked:
                    if not unlocked:
                        continue  # a download in progress
                    space.remove(item.path)
            else:
                space.remove(item.path)
            removed += 1
            freed += item.size
        return removed, freed

    def prune(
        self,
        everything: bool = False,
        older_than: float | None = None,
        max_size: int | None = None,
    ) -> tuple[int, int]:
        """Remove the leftovers of killed downloads, then all entries and trees, or those not
        used for ``older_than`` seconds, or evict to ``max_size`` (default ``[cache]
        max_size``). Entries pinned by a reader are kept. Returns (removed, bytes freed)."""
        removed, freed = self.remove_leftovers()
        if not everything and older_than is None:
            n, size = self.evict(max_size)
            return removed + n, freed + size
        cutoff = time.time() - (older_than or 0)
        for entry in self.entries():
            if (everything or entry.last_access < cutoff) and self._remove(entry.key, False):
                removed += 1
                freed += entry.size
        with self._db() as db:
            trees = db.execute("SELECT key, size, last_access FROM trees").fetchall()
        for key, size, last_access in trees:
            if (everything or last_access < cutoff) and self._remove(key, True):
                removed += 1
                freed += size
        return removed, freed

    def reset_counters(self) -> None:
        with self._db() as db:
            db.execute("DELETE FROM counters WHERE name NOT LIKE 'throughput_mbps:%'")


__all__ = [
    "BAD",
    "GOOD",
    "OFFLINE",
    "CacheEntry",
    "CacheFull",
    "CacheMiss",
    "CacheStats",
    "ReadCache",
    "entry_key",
    "throughput_counter",
]
