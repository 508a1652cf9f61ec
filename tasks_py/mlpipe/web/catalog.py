"""What the results site may show: MLflow runs, registered models and published files.

Every read goes to MLflow (``MlflowClient``) or through the read cache
(:class:`mlpipe.storage.ReadCache`; a finished run's ``mlpipe/outputs.json``
through :class:`mlpipe.tasks.model_cache.ModelCache`, downloaded once); nothing
is written anywhere but the cache. Scope:

* runs: those of the configured experiments only (``WebSettings.experiments``);
* models: the configured registered model names only;
* files: an NGAS file is *published* when it is an output (``predictions``
  recorded in ``mlpipe/outputs.json``) of a FINISHED ``infer`` run of one of
  those experiments; it is served at exactly the version that run recorded.

Failures: MLflow's own "does not exist" and anything outside the scope raise
:class:`NotPublished` (HTTP 404); any other failure of MLflow or NGAS (401,
403, 5xx, timeouts, a published file missing from the archive) raises
:class:`Unavailable` (HTTP 502), never "not found".
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from mlpipe.config import Config, load_config
from mlpipe.errors import BadInput, MlpipeError
from mlpipe.monitor.names import FIGURES as MONITOR_FIGURES
from mlpipe.monitor.names import MONITOR_TASK, threshold_metric
from mlpipe.storage import BadFileId, NgasError, ReadCache
from mlpipe.storage.ngas import validate_file_id
from mlpipe.tasks import compare
from mlpipe.tasks.mlflow_errors import is_not_found, translate
from mlpipe.tasks.model_cache import ModelCache
from mlpipe.tasks.runs import OUTPUTS_ARTIFACT, TAG_TASK
from mlpipe.web.settings import WebSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
VERSION_RE = re.compile(r"^[1-9][0-9]{0,8}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
INFER_TASK = "infer"
PREDICTIONS = "predictions"
WEB_MLFLOW_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
ACTUAL_COLUMN = "target"  # what the weather plugin's predict() writes next to its predictions


class NotPublished(MlpipeError):
    """Not part of what the site publishes (or MLflow says it does not exist): HTTP 404."""


class Unavailable(MlpipeError):
    """MLflow or NGAS failed (not a "does not exist"): HTTP 502. The message is for the log."""


@dataclass(frozen=True)
class PublishedFile:
    """One NGAS file the site serves, at the version its run recorded."""

    file_id: str
    version: int
    size: int
    checksum: str
    run_id: str
    experiment: str
    model: str
    model_version: str
    created: str

    @property
    def name(self) -> str:
        return self.file_id.rsplit("/", 1)[-1]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "name": self.name, "download": f"/files/{self.file_id}"}


def iso(ms: int | None) -> str:
    """MLflow milliseconds since the epoch as ISO 8601 UTC ("" when unset)."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mlpipe_tags(tags: dict[str, str]) -> dict[str, str]:
    """The lineage and identity tags mlpipe's tasks write (no mlflow.* internals)."""
    return {k: v for k, v in sorted(tags.items()) if k.startswith("mlpipe.")}


def _data_ids(text: str) -> list[str]:
    """``mlpipe.data_ids`` (``id#version,id#version``) as a list."""
    return [part for part in (p.strip() for p in text.split(",")) if part] if text else []


class Catalog:
    """Read-only view of the configured experiments, models and their published files."""

    def __init__(self, settings: WebSettings, client: MlflowClient, cache: ReadCache) -> None:
        self.settings = settings
        self.client = client
        self.cache = cache
        self.model_files = ModelCache(cache, client)
        self._lock = threading.Lock()
        self._memo: dict[str, tuple[float, Any]] = {}
        self._finished: dict[str, Any] = {}  # run id -> immutable data of a finished run

    @classmethod
    def from_config(cls, settings: WebSettings, config: Config | None = None) -> Catalog:
        """MLflow at ``[mlflow] tracking_uri`` (account from ``MLFLOW_TRACKING_USERNAME``/
        ``PASSWORD`` or ``[mlflow] tracking_token``), files through the ``[cache]``."""
        import os

        import mlflow

        config = config or load_config()
        if config.mlflow.tracking_token:
            os.environ.setdefault("MLFLOW_TRACKING_TOKEN", config.mlflow.tracking_token)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        # a page waits seconds, not minutes, for a failing MLflow (then answers 502)
        for key, value in WEB_MLFLOW_HTTP.items():
            os.environ.setdefault(key, value)
        uri = config.mlflow.tracking_uri
        mlflow.set_tracking_uri(uri)  # error messages name it
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return cls(settings, client, ReadCache.from_config(config))

    # ------------------------------------------------------------ plumbing
    def _call(self, what: str, call: Callable[[], T]) -> T:
        """``call()``; "does not exist" -> NotPublished, any other failure -> Unavailable."""
        try:
            return call()
        except MlflowException as exc:
            if is_not_found(exc):
                raise NotPublished(f"{what}: not found") from exc
            raise Unavailable(str(translate(exc, what))) from exc
        except requests.RequestException as exc:
            raise Unavailable(str(translate(exc, what))) from exc

    def _fresh(self, key: str, make: Callable[[], T]) -> T:
        """``make()``, reused for ``settings.refresh`` seconds."""
        now = time.monotonic()
        with self._lock:
            hit = self._memo.get(key)
        if hit is not None and now - hit[0] < self.settings.refresh:
            return hit[1]  # type: ignore[no-any-return]
        value = make()
        with self._lock:
            self._memo[key] = (now, value)
            if len(self._memo) > 512:
                oldest = sorted(self._memo.items(), key=lambda kv: kv[1][0])[:256]
                for k, _ in oldest:
                    self._memo.pop(k, None)
        return value

    def _once(self, key: str, make: Callable[[], T]) -> T:
        """``make()`` for data that never changes (of a finished run), kept."""
        with self._lock:
            if key in self._finished:
                return self._finished[key]  # type: ignore[no-any-return]
        value = make()
        with self._lock:
            if len(self._finished) > 4096:
                self._finished.clear()
            self._finished[key] = value
        return value

    def experiments(self) -> dict[str, str]:
        """Experiment id -> name of the configured experiments that exist."""

        def make() -> dict[str, str]:
            found: dict[str, str] = {}
            for name in self.settings.experiments:
                what = f"reading MLflow experiment {name!r}"
                exp = self._call(what, functools.partial(self.client.get_experiment_by_name, name))
                if exp is not None:
                    found[str(exp.experiment_id)] = name
            return found

        return self._fresh("experiments", make)

    # ---------------------------------------------------------------- runs
    def _search(self, filter_string: str = "", limit: int | None = None) -> list[Run]:
        ids = list(self.experiments())
        if not ids:
            return []
        limit = limit or self.settings.max_runs
        runs: list[Run] = []
        token: str | None = None
        while len(runs) < limit:
            page = self._call(
                "searching MLflow runs",
                functools.partial(
                    self.client.search_runs,
                    ids,
                    filter_string=filter_string,
                    order_by=["attributes.start_time DESC"],
                    max_results=min(limit - len(runs), 1000),
                    page_token=token,
                ),
            )
            runs.extend(page)
            token = page.token
            if not token:
                break
        return runs

    def _run_summary(self, run: Run) -> dict[str, Any]:
        tags = run.data.tags
        return {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name or "",
            "experiment": self.experiments().get(str(run.info.experiment_id), ""),
            "status": run.info.status,
            "start_time": iso(run.info.start_time),
            "end_time": iso(run.info.end_time),
            "task": tags.get(TAG_TASK, ""),
            "step": tags.get("mlpipe.step", ""),
            "metrics": dict(sorted(run.data.metrics.items())),
        }

    def runs(self) -> list[dict[str, Any]]:
        """The newest runs (at most ``max_runs``) of the configured experiments."""
        return self._fresh("runs", lambda: [self._run_summary(r) for r in self._search()])

    def _get_run(self, run_id: str) -> Run:
        if not RUN_ID_RE.match(run_id):
            raise NotPublished(f"run {run_id!r}: not a run id")
        run = self._call(f"reading MLflow run {run_id}", lambda: self.client.get_run(run_id))
        if str(run.info.experiment_id) not in self.experiments():
            raise NotPublished(f"run {run_id}: not in a published experiment")
        return run

    def run(self, run_id: str) -> dict[str, Any]:
        """One run: params, metrics, lineage tags, and its published files (infer runs)."""
        run = self._get_run(run_id)
        out = self._run_summary(run)
        out["params"] = dict(sorted(run.data.params.items()))
        out["tags"] = _mlpipe_tags(run.data.tags)
        out["data_ids"] = _data_ids(run.data.tags.get("mlpipe.data_ids", ""))
        files = self._files_of(run)
        out["outputs"] = [f.as_dict() for f in files]
        out["plots"] = []
        if files and self._has_actuals(files[0]):
            out["plots"].append(f"/plots/runs/{run_id}/predicted.png")
        return out

    # ----------------------------------------------------------- published
    def _outputs_of(self, run: Run) -> dict[str, Any]:
        """``mlpipe/outputs.json`` of a run ({} when its artifacts list none)."""
        run_id = run.info.run_id

        def make() -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="mlpipe-web-") as tmp:
                try:
                    path = self.model_files.run_file(run, OUTPUTS_ARTIFACT, Path(tmp))
                except MlpipeError as exc:  # MLflow failing, offline cache mode: never absent
                    raise Unavailable(f"run {run_id}: {exc}") from exc
                if path is None:
                    return {}
                try:
                    data = json.loads(Path(path).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise Unavailable(
                        f"run {run_id}: unreadable {OUTPUTS_ARTIFACT}: {exc}"
                    ) from exc
            return data if isinstance(data, dict) else {}

        return self._once(f"outputs:{run_id}", make)

    def _files_of(self, run: Run) -> list[PublishedFile]:
        """The published files of one run: predictions of a finished infer run."""
        tags = run.data.tags
        if tags.get(TAG_TASK) != INFER_TASK or run.info.status != "FINISHED":
            return []
        experiment = self.experiments().get(str(run.info.experiment_id), "")
        files: list[PublishedFile] = []
        for item in self._outputs_of(run).get(PREDICTIONS) or []:
            if not isinstance(item, dict):
                continue
            try:
                file_id = validate_file_id(str(item.get("id", "")))
                version = int(item.get("version") or 0)
            except (BadFileId, TypeError, ValueError):
                log.warning("run %s: skipping a malformed output entry", run.info.run_id)
                continue
            if version < 1:
                continue
            files.append(
                PublishedFile(
                    file_id=file_id,
                    version=version,
                    size=int(item.get("size") or 0),
                    checksum=str(item.get("checksum") or ""),
                    run_id=run.info.run_id,
                    experiment=experiment,
                    model=tags.get("mlpipe.model_name", ""),
                    model_version=tags.get("mlpipe.model_version", ""),
                    created=iso(run.info.end_time or run.info.start_time),
                )
            )
        return files

    def _index(self) -> dict[str, PublishedFile]:
        """File id -> its newest published version (over all published infer runs)."""

        def make() -> dict[str, PublishedFile]:
            flt = f"tags.`{TAG_TASK}` = '{INFER_TASK}' and attributes.status = 'FINISHED'"
            index: dict[str, PublishedFile] = {}
            for run in self._search(flt, limit=10_000):
                for f in self._files_of(run):
                    if f.file_id not in index or index[f.file_id].version < f.version:
                        index[f.file_id] = f
            return index

        return self._fresh("index", make)

    def outputs(self) -> list[dict[str, Any]]:
        """Every published file (newest published version of each id), newest first."""
        files = sorted(self._index().values(), key=lambda f: (f.created, f.file_id), reverse=True)
        return [f.as_dict() for f in files]

    def published(self, file_id: str) -> PublishedFile:
        """The published file ``file_id`` (exact id match; anything else is NotPublished)."""
        found = self._index().get(file_id)
        if found is None:
            raise NotPublished("file: not published")
        return found

    def local_file(self, pub: PublishedFile) -> Path:
        """The published version's bytes in the read cache (downloaded once, crc-checked)."""
        try:
            return self.cache.fetch(pub.file_id, version=pub.version)
        except (NgasError, OSError) as exc:  # a published file missing is the archive's fault
            raise Unavailable(
                f"NGAS read of published {pub.file_id} v{pub.version}: {exc}"
            ) from exc
        except MlpipeError as exc:  # CacheMiss (offline mode) and the like
            raise Unavailable(f"read cache for {pub.file_id} v{pub.version}: {exc}") from exc

    # ------------------------------------------------------------- plots
    def _rows(self, pub: PublishedFile) -> Iterator[dict[str, str]]:
        if pub.size > self.settings.max_plot_bytes:
            return
        with self.local_file(pub).open(encoding="utf-8", errors="replace", newline="") as fh:
            yield from csv.DictReader(fh)

    @staticmethod
    def _predicted_column(columns: list[str]) -> str | None:
        return next((c for c in columns if c.startswith("predicted")), None)

    def _has_actuals(self, pub: PublishedFile) -> bool:
        if pub.size > self.settings.max_plot_bytes:
            return False
        with self.local_file(pub).open(encoding="utf-8", errors="replace", newline="") as fh:
            header = next(csv.reader(fh), [])
        return ACTUAL_COLUMN in header and self._predicted_column(header) is not None

    def predicted_vs_actual(self, run_id: str) -> tuple[list[float], list[float], str]:
        """(actual, predicted, predicted column) of an infer run's published files."""
        files = self._files_of(self._get_run(run_id))
        actual: list[float] = []
        predicted: list[float] = []
        column = ""
        for pub in files:
            for row in self._rows(pub):
                column = column or self._predicted_column(list(row)) or ""
                if not column or ACTUAL_COLUMN not in row:
                    break
                try:
                    a, p = float(row[ACTUAL_COLUMN]), float(row[column])
                except (TypeError, ValueError):
                    continue
                actual.append(a)
                predicted.append(p)
                if len(actual) >= self.settings.max_plot_rows:
                    return actual, predicted, column
        if not actual:
            raise NotPublished(f"run {run_id}: no predictions with actual values to plot")
        return actual, predicted, column

    # -------------------------------------------------------------- models
    def _check_model(self, name: str) -> None:
        if name not in self.settings.models:
            raise NotPublished(f"model {name!r}: not published")

    def _version_metrics(self, run_id: str) -> dict[str, float]:
        if not run_id:
            return {}

        def make() -> dict[str, float]:
            try:
                run = self._call(f"reading run {run_id}", lambda: self.client.get_run(run_id))
            except NotPublished:
                return {}
            return dict(sorted(run.data.metrics.items()))

        return self._once(f"metrics:{run_id}", make)

    def model(self, name: str) -> dict[str, Any]:
        """A registered model: aliases, every version with its metrics and lineage."""
        self._check_model(name)

        def make() -> dict[str, Any]:
            what = f"reading registered model {name!r}"
            registered = self._call(what, lambda: self.client.get_registered_model(name))
            found = self._call(what, lambda: self.client.search_model_versions(f"name = '{name}'"))
            aliases = {str(k): str(v) for k, v in sorted(dict(registered.aliases or {}).items())}
            versions = []
            for mv in sorted(found, key=lambda v: int(v.version), reverse=True):
                tags = dict(mv.tags or {})
                versions.append(
                    {
                        "version": str(mv.version),
                        "status": str(mv.status or ""),
                        "created": iso(mv.creation_timestamp),
                        "aliases": sorted(a for a, v in aliases.items() if v == str(mv.version)),
                        "run_id": str(mv.run_id or ""),
                        "metrics": self._version_metrics(str(mv.run_id or "")),
                        "parent_version": tags.get("mlpipe.parent_version", ""),
                        "promoted_from": tags.get("mlpipe.promoted_from", ""),
                        "data_ids": _data_ids(tags.get("mlpipe.data_ids", "")),
                        "tags": _mlpipe_tags(tags),
                    }
                )
            shown = aliases.get(self.settings.alias)
            for v in versions:
                other = shown and shown != v["version"]
                v["compare"] = (
                    f"/models/{name}/compare/{self.settings.alias}/{v['version']}" if other else ""
                )
            metrics = sorted({m for v in versions for m in v["metrics"]})
            return {
                "name": name,
                "description": str(registered.description or ""),
                "aliases": aliases,
                "versions": versions,
                "metrics": metrics,
                "plots": [f"/plots/models/{name}/{m}.png" for m in self._plotted(metrics)],
            }

        return self._fresh(f"model:{name}", make)

    def _plotted(self, metrics: list[str]) -> list[str]:
        """The held-out metrics worth a plot (no train_*/parent_*/row counts)."""
        skip = ("train_", "parent_", "rows_", "challenger_", "champion_")
        return [m for m in metrics if not m.startswith(skip) and m not in ("files", "rows")]

    def models(self) -> list[dict[str, Any]]:
        """Every configured model that exists, with its aliases and newest version."""
        out = []
        for name in self.settings.models:
            try:
                model = self.model(name)
            except NotPublished:
                continue  # configured but not registered (yet)
            out.append(
                {
                    "name": name,
                    "aliases": model["aliases"],
                    "latest_version": model["versions"][0]["version"] if model["versions"] else "",
                    "alias": self.settings.alias,
                    "alias_version": model["aliases"].get(self.settings.alias, ""),
                    "versions": len(model["versions"]),
                    "metrics": self._shown_metrics(model),
                }
            )
        return out

    def _shown_metrics(self, model: dict[str, Any]) -> dict[str, float]:
        """Metrics of the version the alias points to, else of the newest version."""
        wanted = model["aliases"].get(self.settings.alias)
        for v in model["versions"]:
            if v["version"] == wanted:
                return dict(v["metrics"])
        return dict(model["versions"][0]["metrics"]) if model["versions"] else {}

    def metric_over_versions(self, name: str, metric: str) -> list[tuple[int, float]]:
        """(version, value) of ``metric`` for every version of model ``name`` that has it."""
        model = self.model(name)
        if metric not in model["metrics"]:
            raise NotPublished(f"model {name!r}: no metric {metric!r}")
        points = [
            (int(v["version"]), float(v["metrics"][metric]))
            for v in model["versions"]
            if metric in v["metrics"]
        ]
        return sorted(points)

    # ---------------------------------------------------------- comparison
    def _side_ref(self, name: str, given: str) -> str:
        """``NAME/VERSION`` or ``NAME@ALIAS`` for a path segment (anything else: 404)."""
        if VERSION_RE.match(given):
            return f"{name}/{given}"
        if ALIAS_RE.match(given):
            return f"{name}@{given}"
        raise NotPublished(f"model {name!r}: {given!r} is neither a version nor an alias")

    def _compared(self, what: str, make: Callable[[], T]) -> T:
        """``make()``; unknown model/version/alias -> NotPublished, a failure -> Unavailable."""
        try:
            return make()
        except BadInput as exc:
            raise NotPublished(f"{what}: {exc}") from exc
        except MlpipeError as exc:
            raise Unavailable(f"{what}: {exc}") from exc

    def _version_side(self, name: str, version: str) -> compare.Side:
        self._check_model(name)
        if not VERSION_RE.match(version):
            raise NotPublished(f"model {name!r}: {version!r} is not a version")
        return self._fresh(
            f"side:{name}/{version}",
            lambda: self._compared(
                f"model {name} version {version}",
                lambda: compare.side(self.client, "version", f"{name}/{version}"),
            ),
        )

    def comparison(self, name: str, champion: str, challenger: str) -> dict[str, Any]:
        """Two versions of a published model side by side (:mod:`mlpipe.tasks.compare`),
        with the site paths of their plots."""
        self._check_model(name)
        refs = (self._side_ref(name, champion), self._side_ref(name, challenger))

        def make() -> dict[str, Any]:
            what = f"comparing {refs[0]} with {refs[1]}"
            result = self._compared(what, lambda: compare.compare(self.client, *refs))
            out = result.as_dict()
            for role, item in (
                (compare.CHAMPION, result.champion),
                (compare.CHALLENGER, result.challenger),
            ):
                out[role]["plot_links"] = {
                    path: f"/plots/models/{name}/versions/{item.version}/artifacts/{path}"
                    for path in item.plots
                }
            return out

        return self._fresh(f"compare:{refs[0]}:{refs[1]}", make)

    def version_plot(self, name: str, version: str, path: str) -> bytes:
        """A plot artifact of the training run of ``name`` version ``version``: only one its
        artifact listing names as a plot (read through the read cache: a finished run's
        plot is downloaded once)."""
        item = self._version_side(name, version)
        if path not in item.plots:
            raise NotPublished(f"model {name} version {version}: no plot {path!r}")
        what = f"model {name} version {version}"
        run = self._call(
            f"reading MLflow run {item.run_id}", lambda: self.client.get_run(item.run_id)
        )
        with tempfile.TemporaryDirectory(prefix="mlpipe-web-plot-") as tmp:
            local = self._compared(
                what,
                lambda: self.model_files.run_file(run, path, Path(tmp), f"{what}: plot {path}"),
            )
            if local is None:  # listed a moment ago, gone now
                raise Unavailable(f"{what}: plot {path!r} is no longer in the run's artifacts")
            if local.stat().st_size > self.settings.max_plot_bytes:
                raise NotPublished(f"model {name} version {version}: plot {path!r} too large")
            return local.read_bytes()

    # ------------------------------------------------------------- erosion
    def monitor(self, name: str) -> dict[str, Any]:
        """The erosion monitor runs of model ``name`` (one per published experiment it ran
        for): their latest figures, the thresholds and the site paths of their plots."""
        self._check_model(name)

        def make() -> dict[str, Any]:
            flt = f"tags.`{TAG_TASK}` = '{MONITOR_TASK}' and tags.`mlpipe.model_name` = '{name}'"
            runs = []
            for run in self._search(flt):
                metrics = run.data.metrics
                shown = [f for f in MONITOR_FIGURES if f in metrics]
                runs.append(
                    {
                        "run_id": run.info.run_id,
                        "experiment": self.experiments().get(str(run.info.experiment_id), ""),
                        "latest": {f: metrics[f] for f in shown},
                        "thresholds": {
                            f: metrics[threshold_metric(f)]
                            for f in shown
                            if threshold_metric(f) in metrics
                        },
                        "plots": [f"/plots/monitor/{run.info.run_id}/{f}.png" for f in shown],
                    }
                )
            return {"name": name, "runs": runs}

        return self._fresh(f"monitor:{name}", make)

    def monitor_series(
        self, run_id: str, figure: str
    ) -> tuple[str, list[tuple[int, float]], list[tuple[int, float]]]:
        """(model, figure's (step, value) points, its threshold's points) of a monitor run;
        steps are the batch times in milliseconds since the epoch."""
        if figure not in MONITOR_FIGURES:
            raise NotPublished(f"monitor figure {figure!r}: one of {', '.join(MONITOR_FIGURES)}")
        run = self._get_run(run_id)
        model = run.data.tags.get("mlpipe.model_name", "")
        if run.data.tags.get(TAG_TASK) != MONITOR_TASK:
            raise NotPublished(f"run {run_id}: not a monitor run")
        self._check_model(model)

        def history(key: str) -> list[tuple[int, float]]:
            found = self._call(
                f"reading {key} of run {run_id}",
                functools.partial(self.client.get_metric_history, run_id, key),
            )
            return sorted((int(m.step), float(m.value)) for m in found)

        def make() -> tuple[str, list[tuple[int, float]], list[tuple[int, float]]]:
            return model, history(figure), history(threshold_metric(figure))

        series = self._fresh(f"monitor-series:{run_id}:{figure}", make)
        if not series[1]:
            raise NotPublished(f"run {run_id}: no {figure} logged")
        return series
