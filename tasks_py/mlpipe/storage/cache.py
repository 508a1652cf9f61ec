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
download it once (the second waits on the file lock, then finds it cached).
The total size (files and trees) is kept under ``max_size`` by evicting the least
recently used files and trees.
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
from mlpipe.storage.errors import CacheMiss
from mlpipe.storage.ngas import FileInfo, NgasClient, client_options, validate_file_id
from mlpipe.storage.probe import BAD, GOOD, OFFLINE, ConnectionMode, ProbeResult, probe
from mlpipe.storage.uri import parse_ngas_uri

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, server TEXT NOT NULL, file_id TEXT NOT NULL, version INTEGER NOT NULL,
    checksum TEXT NOT NULL, size INTEGER NOT NULL, fetched_at REAL NOT NULL,
    last_access REAL NOT NULL
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


@dataclass(frozen=True)
class CacheStats:
    directory: Path
    entries: int
    size: int
    max_size: int
    counters: dict[str, float]
    trees: int = 0  # of ``entries`` and ``size``: cached directory trees (model versions, ...)

    @property
    def hits(self) -> int:
        return int(self.counters.get("hits", 0))

    @property
    def misses(self) -> int:
        return int(self.counters.get("misses", 0))


def _key(server: str, file_id: str, version: int) -> str:
    return hashlib.sha256(f"{server}\0{file_id}\0{version}".encode()).hexdigest()


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
    ) -> None:
        self.dir = Path(directory)
        self.default_url = default_url.rstrip("/")
        self.max_size = max_size
        self.configured_mode = mode
        self.client_options = client_options or {}
        self.probe_max_latency_ms = probe_max_latency_ms
        self.probe_min_throughput_mbps = probe_min_throughput_mbps
        self.probe_ttl = probe_ttl
        self._clients: dict[str, NgasClient] = {}
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

    @property
    def network_requests(self) -> int:
        """HTTP requests made by this cache's clients so far."""
        return sum(c.requests_sent for c in self._clients.values())

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
            row = db.execute("SELECT value FROM counters WHERE name = 'throughput_mbps'").fetchone()
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
            path = self.object_path(entry.key)
            try:
                if path.stat().st_size == entry.size:
                    return entry
            except FileNotFoundError:
                pass
            self._drop(entry.key)  # file gone or truncated: forget it
        return None

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
        :meth:`copy_to` for a private copy).
        """
        server, file_id = self._resolve(target, server)
        cached = self._lookup(server, file_id, version)
        if cached and version is not None:
            return self._hit(cached)
        mode = self.mode(server) if cached or self.configured_mode != OFFLINE else OFFLINE
        if mode == OFFLINE:
            if cached:
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
            if (server, file_id) in self._warned:
                return self._hit(cached, "stale_served")
            self._warned.add((server, file_id))
            log.warning(
                "bad connection to %s: serving cached %s version %d, which may be stale",
                server,
                file_id,
                cached.version,
            )
            return self._hit(cached, "stale_served")
        client = self.client(server)
        info = client.info(file_id, version)
        if cached and cached.version == info.version and cached.checksum == info.checksum:
            return self._hit(cached)
        return self._download(server, info)

    def _download(self, server: str, info: FileInfo) -> Path:
        key = _key(server, info.file_id, info.version)
        path = self.object_path(key)
        with FileLock(str(self.dir / "locks" / f"{key}.lock")):
            entry = self._lookup(server, info.file_id, info.version)
            if entry and entry.checksum == info.checksum:
                return self._hit(entry)  # another process fetched it while we waited
            start = time.perf_counter()
            self.client(server).retrieve(info.file_id, path, expected=info)
            seconds = time.perf_counter() - start
            now = time.time()
            with self._db() as db:
                db.execute(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, server, info.file_id, info.version, info.checksum, info.size, now, now),
                )
                self._count(db, "misses")
                self._count(db, "downloads")
                self._count(db, "bytes_downloaded", info.size)
                if info.size >= 1024 * 1024 and seconds > 0:
                    mbps = info.size / seconds / 1e6
                    db.execute(
                        "INSERT INTO counters (name, value) VALUES ('throughput_mbps', ?) "
                        "ON CONFLICT(name) DO UPDATE "
                        "SET value = 0.5 * value + 0.5 * excluded.value",
                        (mbps,),
                    )
        self.evict(keep=key)
        return path

    def copy_to(
        self, target: str, dest: Path | str, version: int | None = None, server: str | None = None
    ) -> Path:
        """Fetch ``target`` through the cache and copy it to ``dest`` (atomically)."""
        src = self.fetch(target, version, server)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        try:
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
        with self._db() as db:
            n, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
            trees, tree_size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM trees"
            ).fetchone()
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        return CacheStats(self.dir, n + trees, size + tree_size, self.max_size, counters, trees)

    def evict(self, max_size: int | None = None, keep: str | None = None) -> tuple[int, int]:
        """Remove least recently used files and trees until the total is <= ``max_size``.

        Returns (files and trees removed, bytes freed). ``keep`` is a key never evicted.
        """
        limit = self.max_size if max_size is None else max_size
        removed = freed = 0
        with FileLock(str(self.dir / "locks" / "evict.lock")):
            with self._db() as db:
                total = db.execute(
                    "SELECT (SELECT COALESCE(SUM(size), 0) FROM entries)"
                    " + (SELECT COALESCE(SUM(size), 0) FROM trees)"
                ).fetchone()[0]
                if total <= limit:
                    return 0, 0
                victims = db.execute(
                    "SELECT key, size, last_access, 0 FROM entries UNION ALL "
                    "SELECT key, size, last_access, 1 FROM trees ORDER BY 3 ASC"
                ).fetchall()
            for key, size, _, is_tree in victims:
                if total <= limit:
                    break
                if key == keep:
                    continue
                with FileLock(str(self.dir / "locks" / f"{key}.lock")):
                    if is_tree:
                        self.drop_tree(key)
                    else:
                        self._drop(key)
                total -= size
                removed += 1
                freed += size
            if removed:
                with self._db() as db:
                    self._count(db, "evictions", removed)
        return removed, freed

    def prune(self, everything: bool = False, older_than: float | None = None) -> tuple[int, int]:
        """Remove all entries and trees, or those not used for ``older_than`` seconds, or evict
        to size."""
        if not everything and older_than is None:
            return self.evict()
        cutoff = time.time() - (older_than or 0)
        removed = freed = 0
        for entry in self.entries():
            if everything or entry.last_access < cutoff:
                with FileLock(str(self.dir / "locks" / f"{entry.key}.lock")):
                    self._drop(entry.key)
                removed += 1
                freed += entry.size
        with self._db() as db:
            trees = db.execute("SELECT key, size, last_access FROM trees").fetchall()
        for key, size, last_access in trees:
            if everything or last_access < cutoff:
                with FileLock(str(self.dir / "locks" / f"{key}.lock")):
                    self.drop_tree(key)
                removed += 1
                freed += size
        return removed, freed

    def reset_counters(self) -> None:
        with self._db() as db:
            db.execute("DELETE FROM counters WHERE name != 'throughput_mbps'")


__all__ = ["BAD", "GOOD", "OFFLINE", "CacheEntry", "CacheMiss", "CacheStats", "ReadCache"]
