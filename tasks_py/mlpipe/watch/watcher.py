"""One FTP watcher: poll, take stable versions, and drive each through its states.

Per taken version (state.py)::

    stable      download into <state_dir>/<name>.files/<row>-<file>.part (REST resume),
                fsync, rename                                  -> downloaded
    downloaded  archive as <data_prefix>/incoming/<file> unless NGAS's newest
                version of that id already has these bytes (size + crc32) -> archived
    archived    note the pipeline run                           -> submitted
    submitted   run the pipeline with the NGAS entry as [watch] input
                (finished steps skip)                           -> done / failed

A state is committed before the next side effect, and every step checks what
is already there first, so a crash or kill at any point redoes at most the
interrupted step, without a second copy (docs/watch.md).
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from mlpipe.config import WatchConfig
from mlpipe.errors import BadInput, MlpipeError
from mlpipe.pipeline.spec import Pipeline
from mlpipe.storage import crc32_of_file
from mlpipe.storage.ngas import checksum_matches
from mlpipe.watch import submit
from mlpipe.watch.ftp import FtpError, FtpLoginFailed, FtpSource
from mlpipe.watch.listing import RemoteFile
from mlpipe.watch.state import FileRow, WatchState

if TYPE_CHECKING:
    from mlpipe.tasks.context import TaskContext


@dataclass
class PollResult:
    """What one poll did (for ``--once``'s exit code and the tests)."""

    listed: int = 0
    taken: int = 0
    done: list[str] = field(default_factory=list)  # names finished in this poll
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class Watcher:
    """Polls ``[watch]``'s server and starts ``[watch] pipeline`` once per new file version."""

    def __init__(
        self, ctx: TaskContext, cfg: WatchConfig, say: Callable[[str], None] | None = None
    ) -> None:
        self.ctx, self.cfg = ctx, cfg
        self._say = say or (lambda line: print(line, flush=True))
        self.stop = threading.Event()
        if not cfg.pipeline:
            raise BadInput(
                "[watch] pipeline: name the pipeline.yaml started for each new file "
                "(MLPIPE_WATCH_PIPELINE)"
            )
        self.pipeline: Pipeline = submit.check(cfg.pipeline, ctx, cfg.input, cfg.executor)
        self.state = WatchState(cfg.state_dir / f"{cfg.name}.sqlite")
        self.files_dir = cfg.state_dir / f"{cfg.name}.files"
        self.files_dir.mkdir(parents=True, exist_ok=True)

    def log(self, msg: str) -> None:
        self._say(f"watch {self.cfg.name}: {msg}")

    # ---------------------------------------------------------------- the loop
    def run_forever(self) -> int:
        """Poll every ``poll_interval`` until SIGTERM/SIGINT (which stop between files)."""
        cfg = self.cfg
        where = FtpSource(cfg).where
        self.log(
            f"watching {where} for {cfg.pattern} every {cfg.poll_interval:g}s: "
            f"pipeline {self.pipeline.name} via {cfg.executor}"
        )
        with self._signals():
            while not self.stop.is_set():
                self.poll()
                self.stop.wait(self.cfg.poll_interval)
        self.log("stopped")
        return 0

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.log(f"{signal.Signals(signum).name}: stopping after the current file")
            self.stop.set()

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def poll(self) -> PollResult:
        """One poll: list, take stable versions, download them, then finish open files."""
        result = PollResult()
        try:
            with FtpSource(self.cfg) as source:
                listing = source.list()
                result.listed = len(listing)
                self._observe(listing, result)
                self._download_all(source, listing, result)
        except FtpLoginFailed as exc:
            self._error(result, f"{exc}; nothing on the server was taken")
        except FtpError as exc:
            self._error(result, str(exc))
        for row in self.state.open_files():  # no FTP needed from here on
            if self.stop.is_set():
                break
            if row.state != "stable":
                self._finish(row, result)
        return result

    def _error(self, result: PollResult, msg: str) -> None:
        result.errors.append(msg)
        print(f"watch {self.cfg.name}: error: {msg}", file=sys.stderr, flush=True)

    def _observe(self, listing: list[RemoteFile], result: PollResult) -> None:
        wanted = [f for f in listing if _matches(f.name, self.cfg.pattern)]
        for f in self.state.observe(wanted, self.cfg.stable_polls):
            result.taken += 1
            self.log(f"{f.name}: stable at {f.size} bytes ({f.mtime}): taken")
        for f in wanted:
            polls = self.state.polls(f.name)
            if 0 < polls < self.cfg.stable_polls:
                self.log(
                    f"{f.name}: {f.size} bytes, unchanged for {polls} of "
                    f"{self.cfg.stable_polls} polls: waiting (upload in progress?)"
                )

    # ------------------------------------------------------------ the states
    def _download_all(
        self, source: FtpSource, listing: list[RemoteFile], result: PollResult
    ) -> None:
        now = {f.name: f for f in listing}
        for row in self.state.open_files():
            if self.stop.is_set():
                return
            if row.state != "stable":
                continue
            current = now.get(row.name)
            if current is None:
                self._error(
                    result,
                    f"{row.name}: gone from the server before its download; "
                    "kept, taken if it comes back",
                )
                self.state.failed_attempt(row, "gone from the server")
                continue
            if current.key != row.remote.key:
                self.log(
                    f"{row.name}: changed on the server before its download "
                    f"({row.size} -> {current.size} bytes): superseded by the new version"
                )
                self.state.advance(row, "superseded")
                continue
            local = self._local(row)
            part = local.with_name(local.name + ".part")
            if not (local.exists() and local.stat().st_size == row.size):  # else: before a crash
                self.log(f"{row.name}: downloading {row.size} bytes")
                try:
                    resumed = source.download(row.remote, part)
                except FtpError as exc:
                    self._error(result, str(exc))
                    self.state.failed_attempt(row, str(exc))
                    continue
                os.replace(part, local)
                resumed_text = f" (resumed at byte {resumed})" if resumed else ""
                self.log(f"{row.name}: downloaded {row.size} bytes{resumed_text}")
            self.state.advance(row, "downloaded")

    def _local(self, row: FileRow) -> Path:
        return self.files_dir / f"{row.id}-{row.name}"

    def _finish(self, row: FileRow, result: PollResult) -> None:
        try:
            if row.state == "downloaded":
                row = self._archive(row)
            if row.state == "archived":
                self.state.advance(row, "submitted", attempts=0)
                row = self._refetch(row)
            if row.state == "submitted":
                self._submit(row, result)
        except BadInput as exc:
            msg = f"{row.name}: {exc}"
            self._error(result, f"{msg}; marked failed (not retried): fix and upload it again")
            self.state.advance(row, "failed", error=str(exc))
        except MlpipeError as exc:
            self._error(result, f"{row.name}: {exc}; retried next poll")
            self.state.failed_attempt(row, str(exc))

    def _refetch(self, row: FileRow) -> FileRow:
        return next(r for r in self.state.all_files() if r.id == row.id)

    def _archive(self, row: FileRow) -> FileRow:
        local = self._local(row)
        file_id = f"{self.ctx.data_prefix}/incoming/{row.name}"
        ngas = self.ctx.ngas
        if not local.exists():
            # archived before a crash, the local copy already removed: find it on NGAS
            rows = [v for v in ngas.versions(file_id) if v.size == row.size]
            if not rows:
                raise BadInput(
                    f"the downloaded copy {local} is missing and NGAS has no {file_id} "
                    f"of {row.size} bytes"
                )
            info = rows[-1]
        else:
            crc = crc32_of_file(local)
            versions = ngas.versions(file_id)
            newest = versions[-1] if versions else None
            if newest and newest.size == row.size and checksum_matches(newest.checksum, crc):
                info = newest
                self.log(f"{row.name}: already on NGAS as {file_id} version {info.version}")
            else:
                mime = mimetypes.guess_type(row.name)[0] or "application/octet-stream"
                info = ngas.archive(local, file_id, mime_type=mime)
                self.log(f"{row.name}: archived as {file_id} version {info.version}")
        self.state.advance(
            row,
            "archived",
            ngas_id=info.file_id,
            ngas_version=info.version,
            checksum=str(info.checksum),
        )
        local.unlink(missing_ok=True)
        return self._refetch(row)

    def _submit(self, row: FileRow, result: PollResult) -> None:
        entry = {
            "id": row.ngas_id,
            "version": row.ngas_version,
            "checksum": row.checksum,
            "size": row.size,
        }
        tags = {
            submit.TAG_WATCH: self.cfg.name,
            submit.TAG_WATCH_FILE: f"{row.ngas_id}@{row.ngas_version}",
        }
        again = f" (attempt {row.attempts + 1})" if row.attempts else ""
        self.log(f"{row.name}: pipeline {self.pipeline.name} via {self.cfg.executor}{again}")
        run = submit.start(
            self.pipeline, self.ctx, self.cfg.executor, {self.cfg.input: [entry]}, tags
        )
        counts = ", ".join(f"{n} {s}" for s, n in run.counts.items() if n)
        if not run.ok:
            failed = "; ".join(f"{o.step}: {o.summary}" for o in run.failed)
            if run.failed and all(o.bad_input for o in run.failed):
                raise BadInput(f"pipeline {run.pipeline} refused it ({counts}): {failed}")
            raise MlpipeError(
                f"pipeline {run.pipeline} run {run.pipeline_run} failed ({counts}): {failed}"
            )
        self.state.advance(row, "done", pipeline_run=run.pipeline_run)
        result.done.append(row.name)
        self.log(f"{row.name}: done: pipeline run {run.pipeline_run} ({counts})")


def _matches(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)
