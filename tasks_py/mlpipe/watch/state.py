"""The watcher's memory: one sqlite database per watcher (``<state_dir>/<name>.sqlite``).

``seen``: the last size/mtime observed per name and for how many polls in a row
(an upload in progress changes them). ``files``: one row per taken version
(name, size, mtime), with its state::

    stable -> downloaded -> archived -> submitted -> done
                                              \\-> failed (bad input: never retried)
    stable -> superseded (changed on the server before it was downloaded)

Each transition is committed (one transaction, synchronous=FULL) before the
next side effect starts, so after a crash the row says what to redo; every
step is idempotent on re-entry (docs/watch.md).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlpipe.errors import BadInput
from mlpipe.watch.listing import RemoteFile

FileState = Literal["stable", "downloaded", "archived", "submitted", "done", "failed", "superseded"]
OPEN_STATES: tuple[FileState, ...] = ("stable", "downloaded", "archived", "submitted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    name TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime TEXT NOT NULL,
    polls INTEGER NOT NULL, first_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL, size INTEGER NOT NULL, mtime TEXT NOT NULL,
    state TEXT NOT NULL, updated REAL NOT NULL,
    ngas_id TEXT NOT NULL DEFAULT '', ngas_version INTEGER NOT NULL DEFAULT 0,
    checksum TEXT NOT NULL DEFAULT '', pipeline_run TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',
    UNIQUE (name, size, mtime)
);
"""


@dataclass(frozen=True)
class FileRow:
    id: int
    name: str
    size: int
    mtime: str
    state: FileState
    ngas_id: str
    ngas_version: int
    checksum: str
    pipeline_run: str
    attempts: int
    error: str

    @property
    def remote(self) -> RemoteFile:
        return RemoteFile(self.name, self.size, self.mtime)


class WatchState:
    """The state database of one watcher."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None)  # explicit transactions
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise BadInput(
                f"[watch] state_dir: cannot open the state database {path}: {exc}; "
                "give a writable directory"
            ) from None

    def close(self) -> None:
        self.db.close()

    def _tx(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self.db:  # BEGIN ... COMMIT (ROLLBACK on error)
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(sql, args)

    def observe(self, listing: list[RemoteFile], stable_polls: int) -> list[RemoteFile]:
        """Record one poll's listing; returns the versions that became stable now.

        A version is taken once: a name whose (size, mtime) was taken before is
        not returned again until it changes. Names gone from the listing are
        forgotten from ``seen`` (a taken version keeps its row).
        """
        now = time.time()
        ready: list[RemoteFile] = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            old = {
                r[0]: (r[1], r[2], r[3])
                for r in self.db.execute("SELECT name, size, mtime, polls FROM seen")
            }
            names = {f.name for f in listing}
            for name in set(old) - names:
                self.db.execute("DELETE FROM seen WHERE name = ?", (name,))
            for f in listing:
                prev = old.get(f.name)
                polls = prev[2] + 1 if prev and (prev[0], prev[1]) == (f.size, f.mtime) else 1
                self.db.execute(
                    "INSERT INTO seen VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                    "size = excluded.size, mtime = excluded.mtime, polls = excluded.polls",
                    (f.name, f.size, f.mtime, polls, now),
                )
                if polls < stable_polls:
                    continue
                taken = self.db.execute(
                    "INSERT OR IGNORE INTO files (name, size, mtime, state, updated) "
                    "VALUES (?, ?, ?, 'stable', ?)",
                    (f.name, f.size, f.mtime, now),
                )
                if taken.rowcount:
                    ready.append(f)
        return ready

    def polls(self, name: str) -> int:
        row = self.db.execute("SELECT polls FROM seen WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def open_files(self) -> list[FileRow]:
        """Taken versions not finished yet, oldest first."""
        marks = ", ".join("?" * len(OPEN_STATES))
        return self._rows(f"WHERE state IN ({marks}) ORDER BY id", OPEN_STATES)

    def all_files(self) -> list[FileRow]:
        return self._rows("ORDER BY id", ())

    def _rows(self, where: str, args: tuple[Any, ...]) -> list[FileRow]:
        cols = "id, name, size, mtime, state, ngas_id, ngas_version, checksum, pipeline_run, "
        cols += "attempts, error"
        return [FileRow(*r) for r in self.db.execute(f"SELECT {cols} FROM files {where}", args)]

    def advance(self, row: FileRow, state: FileState, **values: Any) -> None:
        """Commit ``row``'s move to ``state`` (with ``values``) before anything else happens."""
        cols = {"state": state, "updated": time.time(), "error": "", **values}
        sets = ", ".join(f"{k} = ?" for k in cols)
        self._tx(f"UPDATE files SET {sets} WHERE id = ?", (*cols.values(), row.id))

    def failed_attempt(self, row: FileRow, error: str) -> None:
        """Note an error of ``row``'s current step (it stays in its state, retried next poll)."""
        self._tx(
            "UPDATE files SET attempts = attempts + 1, error = ?, updated = ? WHERE id = ?",
            (error, time.time(), row.id),
        )
