"""MLflow artifact repository on NGAS: ``ngas://host:port/prefix``.

Registered through the ``mlflow.artifact_repository`` entry point ``ngas``.
Works client-side (``mlflow server --default-artifact-root ngas://... --no-serve-artifacts``:
clients talk to NGAS) and server-side (``--artifacts-destination ngas://...``:
the tracking server proxies, this class runs inside it).

* An artifact ``a/b.txt`` of a repository ``ngas://h:p/root`` is the NGAS file
  id ``root/a/b.txt``; logging it again with other content adds an NGAS version
  (NGAS never overwrites; reads return the newest). Logging it again with the
  same content adds nothing: before uploading, the plugin compares the local
  file's size and crc32 with the newest version NGAS holds (as the client
  reports it: an empty-file marker is size 0, crc32 0, and counts only while
  its stored body is intact) and skips the upload when both match.
  ``log_artifacts`` asks with one ``files_like`` listing of the destination
  prefix for the whole tree, ``log_artifact`` with one QUERY of its file id;
  the number of skipped files is logged at info level. A listing that fails
  (401/403, 5xx, timeout) is an error and nothing is archived: a failed
  listing is never read as "nothing stored".
* Batch uploads are not atomic. ``log_artifacts`` archives the tree's files
  one by one (sorted by path); if one fails (NGAS down, a refusal) the call
  raises, and the files archived before it stay in NGAS: listings show them,
  but MLflow never saw the log complete, so the run holds an incomplete set.
  Nothing removes them (NGAS deletes only files held in 3 copies). Running the
  same ``log_artifacts`` again finishes the set: the files already stored
  unchanged are skipped (no second version), the rest are archived. Through
  a proxying tracking server MLflow's client uploads file by file, each a
  ``log_artifact`` here, so a re-run skips in the same way.
* Listings come from one ``files_like`` query; directories are synthesised
  from the path-like ids; only the newest version of each file is shown.
* Downloads go through the local read cache (:class:`ReadCache`, configured by
  ``[cache]``), so repeated loads of a model do not touch the network beyond
  one staleness check (none in ``bad``/``offline`` mode).
* Deletion removes every version with NGAS REMFILE (needs each version's disk
  id, read from the listing); if NGAS refuses, the error says why.
* Empty files (an empty ``__init__.py`` in a model's ``code_paths``, marker
  files) round-trip like any other: NGAS refuses 0-byte bodies (411), so the
  client (:mod:`mlpipe.storage.ngas`) archives an empty file as a fixed marker
  body with the mime type ``application/x-mlpipe-empty`` under the same file
  id. Listings report that format as size 0 and downloads write an empty file
  after checking the stored body is the marker (a damaged one is an error, never
  silently empty). The mime type decides, not the content: a file whose bytes
  equal the marker is stored with its own type and comes back as itself. NGAS
  must have a ``<Stream>`` for that mime type (roles/ngas renders one); without
  it logging an empty file fails with an error saying what to add.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
from pathlib import Path

from mlflow.entities import FileInfo as MlflowFileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    PERMISSION_DENIED,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from mlpipe.errors import BadInput, MlpipeError
from mlpipe.storage.cache import ReadCache
from mlpipe.storage.errors import NgasAccessDenied, NgasNotFound
from mlpipe.storage.ngas import FileInfo, NgasClient, crc32_of_file
from mlpipe.storage.uri import parse_ngas_uri

log = logging.getLogger(__name__)


def _mime(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def _wrap(exc: MlpipeError, message: str = "") -> MlflowException:
    """``exc`` as an MlflowException (``message``, if given, instead of its text)."""
    code = INVALID_PARAMETER_VALUE if isinstance(exc, BadInput) else None
    if isinstance(exc, NgasNotFound):
        code = RESOURCE_DOES_NOT_EXIST
    if isinstance(exc, NgasAccessDenied):
        code = PERMISSION_DENIED
    if code is None:
        return MlflowException(message or str(exc))
    return MlflowException(message or str(exc), error_code=code)


def _unchanged(stored: FileInfo | None, path: Path) -> bool:
    """True when ``stored`` (the newest version of the file's id) holds ``path``'s bytes.

    The crc32 is computed only when the sizes agree. A file that cannot be read
    is "changed": archiving it then raises the error that says why.
    """
    if stored is None:
        return False
    try:
        size = path.stat().st_size
        return stored.size == size and stored.holds(size, crc32_of_file(path))
    except OSError:
        return False


class NgasArtifactRepository(ArtifactRepository):
    """Stores MLflow artifacts as path-like NGAS file ids below the URI's path."""

    def __init__(
        self,
        artifact_uri: str,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
    ) -> None:
        try:
            self._uri = parse_ngas_uri(artifact_uri)
        except BadInput as exc:
            raise _wrap(exc) from exc
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        self._cache: ReadCache | None = None
        self._client: NgasClient | None = None

    # ------------------------------------------------------------ helpers
    @property
    def cache(self) -> ReadCache:
        """The read cache (from the mlpipe config), created on first use."""
        if self._cache is None:
            self._cache = ReadCache.from_config()
        return self._cache

    @property
    def client(self) -> NgasClient:
        if self._client is None:
            self._client = self.cache.client(self._uri.base_url)
        return self._client

    def _file_id(self, *parts: str | None) -> str:
        rel = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
        if any(seg in ("..", ".") for seg in rel.split("/")):
            raise MlflowException(
                f"artifact path {rel!r} under {self.artifact_uri} may not contain '.' or '..'",
                error_code=INVALID_PARAMETER_VALUE,
            )
        return self._uri.child(rel)

    # -------------------------------------------------------------- writes
    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Archive one local file as ``<root>/<artifact_path>/<basename>``.

        Skipped (no new NGAS version) when the newest version NGAS holds has
        the same size and crc32; one QUERY asks.
        """
        local = Path(local_file)
        file_id = self._file_id(artifact_path, local.name)
        try:
            versions = self.client.versions(file_id)
        except MlpipeError as exc:
            raise _wrap(
                exc,
                f"cannot log {local} as {file_id}: asking NGAS whether it already holds it "
                f"failed: {exc}. Nothing was archived; log it again when NGAS answers",
            ) from exc
        newest = versions[-1] if versions else None
        if newest is not None and _unchanged(newest, local):
            log.info(
                "%s: NGAS already holds it unchanged (version %d); skipped 1 file",
                file_id,
                newest.version,
            )
            return
        try:
            self.client.archive(local, file_id, mime_type=_mime(local.name))
        except MlpipeError as exc:
            raise _wrap(exc) from exc

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Archive a whole tree, keeping its relative paths in the file ids.

        One listing of the destination prefix tells which files NGAS already
        holds unchanged (same size and crc32 as the newest version): those are
        skipped, so re-running a log that failed half-way finishes it without
        second versions. The module docstring says what a failed log leaves.
        """
        root = Path(local_dir)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        if not files:
            return
        dest = self._file_id(artifact_path)
        prefix = dest + "/" if dest else ""
        try:
            stored = {r.file_id: r for r in self.client.list(prefix)}
        except MlpipeError as exc:
            raise _wrap(
                exc,
                f"cannot log {root} to {self.artifact_uri}: listing what NGAS already holds "
                f"under {prefix or '(every file id)'} failed: {exc}. Nothing was archived; "
                "run the log again when NGAS answers",
            ) from exc
        archived = skipped = 0
        for path in files:
            rel = path.relative_to(root).as_posix()
            file_id = self._file_id(artifact_path, rel)
            if _unchanged(stored.get(file_id), path):
                skipped += 1
                continue
            try:
                self.client.archive(path, file_id, _mime(path.name))
            except MlpipeError as exc:
                raise _wrap(
                    exc,
                    f"{exc} (logging {root} to {self.artifact_uri}: {archived} file(s) archived "
                    f"and {skipped} already stored before {rel}, "
                    f"{len(files) - archived - skipped} not logged; the run's artifacts are "
                    "incomplete. Run the same log again to finish it: files NGAS already "
                    "holds unchanged are skipped)",
                ) from exc
            archived += 1
        log.info(
            "log_artifacts %s -> %s: %d file(s) archived, %d skipped (NGAS already holds "
            "them unchanged)",
            root,
            self.artifact_uri,
            archived,
            skipped,
        )

    # --------------------------------------------------------------- reads
    def list_artifacts(self, path: str | None = None) -> list[MlflowFileInfo]:
        """Immediate children of ``path``: files (newest version) and synthesised dirs."""
        rel = (path or "").strip("/")
        prefix = self._file_id(rel)
        prefix = prefix + "/" if prefix else ""
        try:
            rows = self.client.list(prefix)
        except MlpipeError as exc:
            raise _wrap(exc) from exc
        files: dict[str, int] = {}
        dirs: set[str] = set()
        for row in rows:
            head, _, tail = row.file_id[len(prefix) :].partition("/")
            child = posixpath.join(rel, head) if rel else head
            if tail:
                dirs.add(child)
            else:
                files[child] = row.size
        infos = [MlflowFileInfo(d, True, None) for d in dirs - set(files)]
        infos += [MlflowFileInfo(f, False, size) for f, size in files.items()]
        return sorted(infos, key=lambda i: i.path)

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        file_id = self._file_id(remote_file_path)
        try:
            self.cache.copy_to(file_id, local_path, server=self._uri.base_url)
        except MlpipeError as exc:
            raise _wrap(exc) from exc

    def get_local_path(self, artifact_path: str) -> str | None:
        """Server-side (proxied) downloads: serve a file straight from the read cache."""
        file_id = self._file_id(artifact_path)
        try:
            return str(self.cache.fetch(file_id, server=self._uri.base_url))
        except NgasNotFound:
            return None  # a directory, or missing: MLflow falls back to download_artifacts
        except MlpipeError as exc:
            raise _wrap(exc) from exc

    # ------------------------------------------------------------- delete
    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """REMFILE every version of every file at or below ``artifact_path``."""
        target = self._file_id(artifact_path)
        prefix = target + "/" if target else ""
        try:
            ids = {r.file_id for r in self.client.list(prefix)}
            if target and self.client.exists(target):
                ids.add(target)
            for file_id in sorted(ids):
                self.client.delete(file_id)
        except MlpipeError as exc:
            raise MlflowException(
                f"cannot delete artifacts {artifact_path or '(all)'} under "
                f"{self.artifact_uri}: {exc}"
            ) from exc


__all__ = ["NgasArtifactRepository"]
