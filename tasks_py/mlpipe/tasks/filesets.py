"""File sets: the NGAS files passed between tasks, as JSON-able lists of dicts.

A file set is ``[{"id": ..., "version": ..., "checksum": ..., "size": ...}, ...]``.
On the command line a task input is given as NGAS file ids or prefixes ending
in ``/`` (all files below, newest versions).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipe.errors import BadInput
from mlpipe.storage import FileInfo, NgasClient, ReadCache
from mlpipe.tasks.spec import TaskResult

FileSet = list[dict[str, Any]]


def entry(info: FileInfo) -> dict[str, Any]:
    return {
        "id": info.file_id,
        "version": info.version,
        "checksum": info.checksum,
        "size": info.size,
    }


def resolve(client: NgasClient, specs: Iterable[str], what: str) -> FileSet:
    """File ids / prefixes (``.../``) -> a file set of their newest versions."""
    out: FileSet = []
    for spec in specs:
        if spec.endswith("/"):
            rows = client.list(spec)
            if not rows:
                raise BadInput(f"{what}: no NGAS files below prefix {spec!r} at {client.url}")
            out.extend(entry(r) for r in rows)
        else:
            rows = client.versions(spec)
            if not rows:
                raise BadInput(f"{what}: NGAS file {spec!r} is not in {client.url}; check the id")
            out.append(entry(rows[-1]))
    return out


def require(files: Any, what: str) -> FileSet:
    """Check a file-set input: a non-empty list of entries with an id."""
    if not isinstance(files, Sequence) or isinstance(files, str):
        raise BadInput(f"input {what}: expected a list of NGAS files, got {files!r}")
    if not files:
        raise BadInput(f"input {what}: the set of files is empty; nothing to process")
    for item in files:
        if not isinstance(item, dict) or not item.get("id"):
            raise BadInput(f"input {what}: {item!r} is not an NGAS file entry")
    return list(files)


def fetch(cache: ReadCache, item: dict[str, Any]) -> Path:
    """Local path of one file-set entry, read through the cache (exact version if known)."""
    return cache.fetch(item["id"], version=item.get("version"))


def basename(file_id: str) -> str:
    return file_id.rsplit("/", 1)[-1]


def store(
    client: NgasClient, path: Path, file_id: str, mime_type: str = "text/csv"
) -> dict[str, Any]:
    """Archive ``path`` as ``file_id`` unless its newest version already has these bytes."""
    from mlpipe.storage import crc32_of_file
    from mlpipe.storage.ngas import checksum_matches

    rows = client.versions(file_id)
    same_size = bool(rows) and rows[-1].size == path.stat().st_size
    if same_size and checksum_matches(rows[-1].checksum, crc32_of_file(path)):
        return entry(rows[-1])
    return entry(client.archive(path, file_id, mime_type=mime_type))


@dataclass(frozen=True)
class Destinations:
    """Where a task stores its good files (``prefix``) and the unusable ones (``quarantine``)."""

    prefix: str
    quarantine: str

    @classmethod
    def of(cls, params: Mapping[str, Any], data_prefix: str, kind: str) -> Destinations:
        """Params ``prefix``/``quarantine``, default ``<data_prefix>/<kind>`` and
        ``<data_prefix>/quarantine/raw``."""
        return cls(
            (params.get("prefix") or f"{data_prefix}/{kind}").strip("/"),
            (params.get("quarantine") or f"{data_prefix}/quarantine/raw").strip("/"),
        )

    def result(
        self, task: str, run_id: str, outputs: dict[str, Any], stored: str, quarantined: FileSet
    ) -> TaskResult:
        """The task's result, summarised ``<stored> under <prefix>/[, N quarantined under ...]``."""
        moved = f", {len(quarantined)} quarantined under {self.quarantine}/" if quarantined else ""
        summary = f"{stored} under {self.prefix}/{moved}"
        return TaskResult(task, run_id, outputs, summary, {"quarantined": quarantined})
