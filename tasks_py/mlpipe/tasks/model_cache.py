"""Registered model versions and finished runs' artifacts, read through the local read cache.

Whatever the artifact scheme (``mlflow-artifacts:`` proxied by the tracking
server, ``ngas://`` direct, any other MLflow artifact repository), the files of
a model version are downloaded once into the read cache as a tree
(:mod:`mlpipe.storage.trees`) keyed by (tracking server, model name, version),
and loaded from there:

* a version (``NAME/3``): registered versions never change, so a cached one is
  served with no request at all, in every connection mode;
* an alias (``NAME@production``): ``good`` mode asks MLflow (one request) and
  records the answer; ``bad`` and ``offline`` use the recorded answer, with a
  warning that it may be stale (``bad`` asks MLflow when nothing is recorded,
  ``offline`` raises :class:`~mlpipe.storage.errors.CacheMiss`);
* the artifacts of a run that has ended (FINISHED, FAILED, KILLED) are cached the
  same way, keyed by (tracking server, run id, path).

``auto`` mode measures the tracking server (median round trip of three
``GET /health``, ``[cache] probe_max_latency_ms``; unreachable is ``offline``),
reused for ``[cache] probe_ttl`` seconds. An alias whose resolution is recorded
is taken from the record, with a warning, when MLflow cannot be reached (after
MLflow's own retries, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``) in ``good`` mode too.
Only MLflow's "does not exist" means
absent: a refused login, a 5xx or a timeout raise
:class:`~mlpipe.tasks.mlflow_errors.MlflowFailed`, and a download that fails or
delivers fewer bytes than listed records nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import shutil
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from mlflow import MlflowClient
from mlflow.entities import Run

from mlpipe.errors import BadInput, MlpipeError
from mlpipe.storage.cache import ReadCache
from mlpipe.storage.errors import CacheMiss
from mlpipe.storage.probe import BAD, GOOD, OFFLINE, ConnectionMode
from mlpipe.storage.trees import Tree, TreeStore, tree_key
from mlpipe.tasks import modelref
from mlpipe.tasks.mlflow_errors import (
    MlflowUnreachable,
    as_mlpipe_errors,
    is_not_found,
    unless_absent,
)
from mlpipe.tasks.modelref import ModelRef

log = logging.getLogger(__name__)

MODEL = "model"
RUN = "run"
ENDED = ("FINISHED", "FAILED", "KILLED")  # a run in these states logs nothing more


class DownloadIncomplete(MlpipeError):
    """The artifact store delivered fewer (or other) bytes than it listed; nothing was kept."""


@dataclass(frozen=True)
class CachedModel:
    """A model version's files in the read cache: load them, never modify them."""

    name: str
    version: str
    path: Path  # the model directory (its MLmodel at the top)
    run_id: str
    downloaded: bool  # False: served from the cache without any request

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def server_id(uri: str) -> str:
    """The tracking server as it names cache entries: no credentials, no trailing slash."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts).rstrip("/")


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class ModelCache:
    """Model versions and run artifacts of one tracking server, cached in ``cache``'s directory."""

    def __init__(self, cache: ReadCache, client: MlflowClient | None = None) -> None:
        self.cache = cache
        self.client = client or MlflowClient()
        self.tracking_uri = str(self.client.tracking_uri)
        self.server = server_id(self.tracking_uri)
        self.trees = TreeStore(cache)
        self._probed: tuple[float, ConnectionMode] | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ modes
    def mode(self) -> ConnectionMode:
        """The connection mode for the tracking server (``auto``: measured)."""
        if self.cache.configured_mode != "auto":
            return self.cache.configured_mode
        if not self.tracking_uri.startswith(("http://", "https://")):
            return GOOD  # a local store (sqlite:, file:): no network to spare
        now = time.monotonic()
        if self._probed and now - self._probed[0] < self.cache.probe_ttl:
            return self._probed[1]
        mode = self._probe()
        self._probed = (now, mode)
        return mode

    def _probe(self) -> ConnectionMode:
        times: list[float] = []
        try:
            for _ in range(3):
                start = time.perf_counter()
                requests.get(f"{self.tracking_uri.rstrip('/')}/health", timeout=5)
                times.append((time.perf_counter() - start) * 1000)
        except requests.RequestException as exc:
            log.info("MLflow at %s unreachable (%s): offline", self.server, exc)
            return OFFLINE
        latency = statistics.median(times)
        mode: ConnectionMode = BAD if latency > self.cache.probe_max_latency_ms else GOOD
        log.info("connection to MLflow at %s: %s (latency %.0f ms)", self.server, mode, latency)
        return mode

    # -------------------------------------------------------------- resolving
    def resolve(self, ref: ModelRef) -> ModelRef:
        """``ref`` with its version: a version as given, an alias by the rules of the mode."""
        if ref.version is not None:
            return ref
        if ref.alias is None:
            raise BadInput(f"model {ref}: give a version or an alias")
        mode = self.mode()
        if mode != GOOD:
            known = self.trees.recall(self.server, MODEL, ref.name, ref.alias)
            if known is not None:
                self._warn_stale(ref, known.value, known.resolved_at, mode)
                return ModelRef(ref.name, version=known.value, alias=ref.alias)
            if mode == OFFLINE:
                raise CacheMiss(
                    f"model {ref}: the alias was never resolved into the cache {self.cache.dir} "
                    f"and the connection mode is offline; load it once while MLflow at "
                    f"{self.server} is reachable (MLPIPE_CACHE_MODE=good), or name a version "
                    "(NAME/VERSION) that is cached"
                )
        # one request (the registered model, with its aliases); a missing model or alias
        # raises BadInput naming what exists, any other failure MlflowFailed
        try:
            version = str(modelref.resolve(self.client, ref).version)
        except MlflowUnreachable as exc:
            known = self.trees.recall(self.server, MODEL, ref.name, ref.alias)
            if known is None:
                raise
            log.info("MLflow unreachable: %s", exc)
            self._warn_stale(ref, known.value, known.resolved_at, "no")
            return ModelRef(ref.name, version=known.value, alias=ref.alias)
        self.trees.remember(self.server, MODEL, ref.name, ref.alias, version)
        return ModelRef(ref.name, version=version, alias=ref.alias)

    def _warn_stale(self, ref: ModelRef, version: str, when: float, mode: str) -> None:
        self.cache.count("alias_stale")
        if str(ref) in self._warned:
            return
        self._warned.add(str(ref))
        log.warning(
            "%s connection to MLflow at %s: using %s -> version %s as resolved at %s, "
            "which may be stale",
            mode,
            self.server,
            ref,
            version,
            _stamp(when),
        )

    # ----------------------------------------------------------------- models
    def get(self, model: ModelRef | str, default_alias: str = "production") -> CachedModel:
        """The files of ``model`` (``NAME@ALIAS``, ``NAME/VERSION``, ``models:/...``)."""
        ref = model if isinstance(model, ModelRef) else modelref.parse(model, default_alias)
        resolved = self.resolve(ref)
        assert resolved.version is not None
        return self.version(resolved.name, resolved.version)

    def version(self, name: str, version: str) -> CachedModel:
        """The files of ``name`` version ``version``: from the cache, else downloaded once."""
        tree = self.trees.get(self.server, MODEL, name, version)
        if tree is None:
            tree = self._download_version(name, version)
        return CachedModel(name, version, tree.path, tree.meta.get("run_id", ""), tree.fetched_now)

    def _download_version(self, name: str, version: str) -> Tree:
        ref = ModelRef(name, version=version)
        if self.mode() == OFFLINE:
            raise CacheMiss(
                f"model {ref.uri} is not in the cache {self.cache.dir} and the connection mode "
                f"is offline; load it once while MLflow at {self.server} is reachable "
                "(MLPIPE_CACHE_MODE=good)"
            )
        what = f"model {ref.uri}"
        found = unless_absent(what, lambda: self.client.get_model_version(name, version))
        if found is None:
            modelref.resolve(self.client, ref)  # raises BadInput naming what exists
            raise BadInput(f"{what}: MLflow has no such version")

        def fill(tmp: Path) -> dict[str, str]:
            with as_mlpipe_errors(f"{what}: finding its files"):
                uri = str(self.client.get_model_version_download_uri(name, version))
            files = download_tree(uri, tmp, what)
            if not (tmp / "MLmodel").is_file():
                raise DownloadIncomplete(
                    f"{what}: its files at {uri} have no MLmodel ({files} file(s)); "
                    "the version was registered from something that is not an MLflow model"
                )
            return {"run_id": str(found.run_id or ""), "source": uri}

        return self.trees.put(self.server, MODEL, name, version, fill)

    def copy_to(
        self, model: ModelRef | str, dest: Path, default_alias: str = "production"
    ) -> CachedModel:
        """The files of ``model`` copied into the new directory ``dest`` (complete or absent);
        the cached version is pinned while it is copied. Its ``path`` is ``dest``."""
        ref = model if isinstance(model, ModelRef) else modelref.parse(model, default_alias)
        resolved = self.resolve(ref)
        assert resolved.version is not None
        with self.cache.pin(tree_key(self.server, MODEL, resolved.name, resolved.version)):
            cached = self.version(resolved.name, resolved.version)  # not evicted while copied
            return dataclasses.replace(cached, path=copy_tree(cached.path, dest))

    # ------------------------------------------------------------------- runs
    def run_file(self, run: Run, path: str, scratch: Path, what: str | None = None) -> Path | None:
        """The artifact ``path`` of ``run``; None when the run's artifacts do not list it.

        A run that has ended is cached (no request after the first read); one still
        running is downloaded into ``scratch`` every time. ``what`` starts the
        error messages (default: ``reading PATH of run ID``).
        """
        run_id = str(run.info.run_id)
        where = str(run.info.artifact_uri)
        rel = _safe(path, f"run {run_id}")
        what = what or f"reading {rel} of run {run_id}"
        if run.info.status not in ENDED:
            return _download_one(where, rel, scratch, what)
        tree = self.trees.get(self.server, RUN, run_id, rel)
        if tree is not None:
            return tree.path / rel
        if self.mode() == OFFLINE:
            raise CacheMiss(
                f"{what}: not in the cache {self.cache.dir} and the connection mode is offline"
            )

        def fill(tmp: Path) -> dict[str, str]:
            if _download_one(where, rel, tmp, what) is None:
                raise _Absent  # not listed: nothing is recorded (it may be logged later)
            return {}

        try:
            tree = self.trees.put(self.server, RUN, run_id, rel, fill)
        except _Absent:
            return None
        return tree.path / rel


class _Absent(Exception):
    """The run's artifacts do not list the file."""


# ----------------------------------------------------------------- downloads
def _safe(path: str, what: str) -> str:
    rel = posixpath.normpath(path.strip("/"))
    if rel in ("", ".") or rel.startswith("..") or posixpath.isabs(rel):
        raise BadInput(f"{what}: artifact path {path!r} must be relative, without '..'")
    return rel


def _repo(uri: str) -> Any:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(uri)


def _walk(repo: Any, path: str, what: str) -> list[tuple[str, int | None]]:
    """(relative path, listed size) of every file below ``path``; empty dirs as size -1."""
    found: list[tuple[str, int | None]] = []
    for info in repo.list_artifacts(path or None):
        rel = _safe(str(info.path), what)
        if info.is_dir:
            below = _walk(repo, rel, what)
            found += below or [(rel, -1)]
        else:
            found.append((rel, None if info.file_size is None else int(info.file_size)))
    return found


def _fetch(repo: Any, rel: str, size: int | None, dest: Path, what: str) -> None:
    local = dest / rel
    local.parent.mkdir(parents=True, exist_ok=True)
    repo._download_file(rel, str(local))  # the one download method every repository has
    got = local.stat().st_size if local.exists() else None
    if size is not None and got != size:
        raise DownloadIncomplete(
            f"{what}: {rel} arrived with {got} bytes, the artifact store lists {size}; "
            "nothing was kept, retry (check the artifact store's log if it repeats)"
        )


def download_tree(uri: str, dest: Path, what: str) -> int:
    """Every file below the artifact location ``uri`` into ``dest``; the number of files.

    Each file's size is checked against the listing. Any failure raises (an MLflow
    or HTTP error as :class:`~mlpipe.tasks.mlflow_errors.MlflowFailed`).
    """
    with as_mlpipe_errors(f"{what}: downloading {uri}"):
        repo = _repo(uri)
        files = _walk(repo, "", what)
        if not files:
            raise DownloadIncomplete(f"{what}: the artifact store lists no files at {uri}")
        for rel, size in files:
            if size == -1:
                (dest / rel).mkdir(parents=True, exist_ok=True)
            else:
                _fetch(repo, rel, size, dest, what)
    return sum(1 for _, size in files if size != -1)


def _download_one(where: str, rel: str, dest: Path, what: str) -> Path | None:
    """The artifact ``rel`` of the artifact root ``where`` into ``dest``; None if not listed."""
    parent, _, base = rel.rpartition("/")
    with as_mlpipe_errors(what):
        repo = _repo(where)
        try:
            listed = {Path(str(i.path)).name: i for i in repo.list_artifacts(parent or None)}
        except Exception as exc:  # MLflow's "does not exist" for a missing folder
            if is_not_found(exc):
                return None
            raise
        info = listed.get(base)
        if info is None or info.is_dir:
            return None
        _fetch(repo, rel, None if info.file_size is None else int(info.file_size), dest, what)
    return dest / rel


def copy_tree(src: Path, dest: Path) -> Path:
    """Copy the directory ``src`` to ``dest`` (which must not exist, or be empty) atomically."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"--dest {dest}: exists and is not an empty directory; name a new one")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{time.monotonic_ns()}.part")
    try:
        shutil.copytree(src, tmp)
        if dest.exists():
            dest.rmdir()
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


__all__ = ["CachedModel", "DownloadIncomplete", "ModelCache", "copy_tree", "download_tree"]
