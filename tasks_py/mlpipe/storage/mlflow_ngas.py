"""MLflow artifact repository on NGAS: ``ngas://host:port/prefix``.

Registered through the ``mlflow.artifact_repository`` entry point ``ngas``.
Works client-side (``mlflow server --default-artifact-root ngas://... --no-serve-artifacts``:
clients talk to NGAS) and server-side (``--artifacts-destination ngas://...``:
the tracking server proxies, this class runs inside it).

* An artifact ``a/b.txt`` of a repository ``ngas://h:p/root`` is the NGAS file
  id ``root/a/b.txt``; logging it again adds an NGAS version.
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
from mlpipe.storage.ngas import NgasClient
from mlpipe.storage.uri import parse_ngas_uri


def _mime(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def _wrap(exc: MlpipeError) -> MlflowException:
    code = INVALID_PARAMETER_VALUE if isinstance(exc, BadInput) else None
    if isinstance(exc, NgasNotFound):
        code = RESOURCE_DOES_NOT_EXIST
    if isinstance(exc, NgasAccessDenied):
        code = PERMISSION_DENIED
    if code is None:
        return MlflowException(str(exc))
    return MlflowException(str(exc), error_code=code)


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
        """Archive one local file as ``<root>/<artifact_path>/<basename>``."""
        local = Path(local_file)
        file_id = self._file_id(artifact_path, local.name)
        try:
            self.client.archive(local, file_id, mime_type=_mime(local.name))
        except MlpipeError as exc:
            raise _wrap(exc) from exc

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Archive a whole tree, keeping its relative paths in the file ids."""
        root = Path(local_dir)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        try:
            for path in files:
                rel = path.relative_to(root).as_posix()
                self.client.archive(path, self._file_id(artifact_path, rel), _mime(path.name))
        except MlpipeError as exc:
            raise _wrap(exc) from exc

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
