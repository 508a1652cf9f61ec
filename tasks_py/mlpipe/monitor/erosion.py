"""The erosion monitor: inference batches whose truth has arrived -> error and drift
figures in MLflow -> a retrain above a threshold.

A *batch* is a FINISHED ``infer`` run (tag ``mlpipe.task``) of the monitored model
(tag ``mlpipe.model_name``) in the monitored experiments, started within
``lookback_days``, not yet evaluated (no tag ``mlpipe.monitor_run``). Its inputs are
the files of its ``data.json``, its predictions those of its ``mlpipe/outputs.json``
and its model version the tag ``mlpipe.model_version``.

The *truth* is in the files below ``truth_prefixes`` (listed on every pass): rows with
``key`` and ``target`` (for the weather example the preprocessed files, whose ``target``
is the next day's observed ``temp_max``). A batch is evaluated once at least
``min_coverage`` of its predicted rows have a truth row with the same key; until then
it waits.

For each evaluated batch, at step = the batch run's start time (milliseconds since the
epoch, also the metrics' timestamp), the monitor run of the model in the batch's
experiment (tags ``mlpipe.task`` = ``monitor``, ``mlpipe.model_name``; created on first
use, named ``monitor-<model>``) gets: ``rmse``, ``mae`` (predictions against truth),
``rows``, ``coverage``, ``psi.<feature>`` (each feature's PSI against the training data
of the version that predicted: the files of its lineage, :mod:`mlpipe.tasks.lineage`),
``psi_max``, the thresholds in force (``psi_max_threshold``, ``<error_metric>_threshold``,
when set) and ``retrain_triggered`` (1 when this batch started a retrain). The batch
run is then tagged ``mlpipe.monitor_run`` (the monitor run's id) and
``mlpipe.monitor`` (its figures and the trigger's decision).
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpipe.config import MonitorConfig, split_names
from mlpipe.errors import BadInput, MlpipeError
from mlpipe.monitor import psi
from mlpipe.monitor.names import DRIFT, MONITOR_TASK, threshold_metric
from mlpipe.monitor.trigger import Decision, TriggerState
from mlpipe.tasks import filesets, frames, lineage
from mlpipe.tasks.mlflow_errors import as_mlpipe_errors
from mlpipe.tasks.runs import OUTPUTS_ARTIFACT, TAG_TASK

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from mlpipe.tasks.context import TaskContext

log = logging.getLogger(__name__)

INFER_TASK = "infer"
TAG_MODEL = "mlpipe.model_name"
TAG_VERSION = "mlpipe.model_version"
TAG_MONITOR_RUN = "mlpipe.monitor_run"
TAG_MONITOR = "mlpipe.monitor"


@dataclass(frozen=True)
class Figures:
    """One batch against its truth and its model's training data."""

    rows: int
    coverage: float
    rmse: float
    mae: float
    psi: dict[str, float]

    @property
    def psi_max(self) -> float:
        return max(self.psi.values())

    @property
    def drift_feature(self) -> str:
        return max(self.psi, key=lambda k: self.psi[k])

    def text(self) -> str:
        return (
            f"rmse {self.rmse:.4g}, mae {self.mae:.4g} on {self.rows} row(s); psi max "
            f"{self.psi_max:.3g} ({self.drift_feature})"
        )


@dataclass
class Pass:
    """What one monitor pass did."""

    model: str
    evaluated: list[tuple[str, Figures]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class Monitor:
    """One model's erosion monitor (``[monitor]`` settings)."""

    def __init__(
        self,
        ctx: TaskContext,
        cfg: MonitorConfig,
        client: MlflowClient,
        say: Callable[[str], None] = print,
    ) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.client = client
        self.say = say
        self.model = cfg.model or ctx.config.model.name
        self._training: dict[str, pd.DataFrame] = {}
        self._truth: pd.DataFrame | None = None

    # ---------------------------------------------------------------- scope
    def experiment_ids(self) -> dict[str, str]:
        """Id -> name of the monitored experiments (``experiments``, else every active one)."""
        names = split_names(self.cfg.experiments)
        found: dict[str, str] = {}
        with as_mlpipe_errors("monitor: reading the MLflow experiments"):
            if not names:
                token: str | None = None
                while True:
                    page = self.client.search_experiments(max_results=1000, page_token=token)
                    found.update({str(e.experiment_id): e.name for e in page})
                    token = page.token
                    if not token:
                        return found
            for name in names:
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise BadInput(
                        f"[monitor] experiments: no MLflow experiment {name!r}; name the "
                        "experiments of the inference pipelines (MLPIPE_MONITOR_EXPERIMENTS)"
                    )
                found[str(exp.experiment_id)] = name
        return found

    def _search(self, ids: list[str], flt: str) -> Iterator[Run]:
        token: str | None = None
        while True:
            with as_mlpipe_errors("monitor: searching MLflow runs"):
                page = self.client.search_runs(
                    ids,
                    filter_string=flt,
                    order_by=["attributes.start_time ASC"],
                    max_results=1000,
                    page_token=token,
                )
            yield from page
            token = page.token
            if not token:
                return

    def batches(self, ids: list[str]) -> list[Run]:
        """The infer runs of the model not evaluated yet, oldest first."""
        since = int((time.time() - self.cfg.lookback_days * 86400) * 1000)
        flt = (
            f"tags.`{TAG_TASK}` = '{INFER_TASK}' and tags.`{TAG_MODEL}` = '{self.model}' "
            f"and attributes.status = 'FINISHED' and attributes.start_time >= {since}"
        )
        return [r for r in self._search(ids, flt) if TAG_MONITOR_RUN not in r.data.tags]

    def monitor_run(self, experiment_id: str) -> str:
        """The id of the model's monitor run in ``experiment_id`` (created on first use)."""
        flt = f"tags.`{TAG_TASK}` = '{MONITOR_TASK}' and tags.`{TAG_MODEL}` = '{self.model}'"
        for run in self._search([experiment_id], flt):
            return str(run.info.run_id)
        with as_mlpipe_errors(f"monitor: creating the monitor run of {self.model}"):
            run = self.client.create_run(
                experiment_id,
                run_name=f"monitor-{self.model}",
                tags={TAG_TASK: MONITOR_TASK, TAG_MODEL: self.model},
            )
            self.client.set_terminated(run.info.run_id)
        return str(run.info.run_id)

    # ----------------------------------------------------------------- data
    def _json_artifact(self, run: Run, path: str) -> dict[str, Any]:
        import mlflow

        where = str(run.info.artifact_uri).rstrip("/")
        with (
            as_mlpipe_errors(f"monitor: reading {path} of run {run.info.run_id}"),
            tempfile.TemporaryDirectory(prefix="mlpipe-monitor-") as tmp,
        ):
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{where}/{path}", dst_path=tmp
            )
            try:
                doc = json.loads(Path(local).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise MlpipeError(f"run {run.info.run_id}: unreadable {path} ({exc})") from None
        if not isinstance(doc, dict):
            raise MlpipeError(f"run {run.info.run_id}: {path} is not a JSON object")
        return doc

    def _csvs(self, files: filesets.FileSet, what: str) -> pd.DataFrame:
        import pandas as pd

        parts = []
        for item in filesets.require(files, what):
            path = filesets.fetch(self.ctx.cache, item)
            try:
                parts.append(pd.read_csv(path, dtype={self.cfg.key: str}))
            except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise BadInput(f"{what}: NGAS file {item['id']} is not a CSV ({exc})") from None
        return pd.concat(parts, ignore_index=True)

    def truth(self) -> pd.DataFrame:
        """Key -> truth of every truth file (a later file wins for the same key)."""
        if self._truth is not None:
            return self._truth
        cfg = self.cfg
        prefixes = split_names(cfg.truth_prefixes) or [f"{self.ctx.data_prefix}/preprocessed/"]
        files = filesets.resolve(self.ctx.ngas, prefixes, "[monitor] truth_prefixes")
        table = self._csvs(files, "[monitor] truth_prefixes")
        for column in (cfg.key, cfg.target):
            if column not in table.columns:
                raise BadInput(
                    f"[monitor] truth_prefixes {', '.join(prefixes)}: the files have no column "
                    f"{column!r} ([monitor] key and target name the truth's columns)"
                )
        table = table[[cfg.key, cfg.target]].dropna()
        self._truth = table.drop_duplicates(cfg.key, keep="last").set_index(cfg.key)
        return self._truth

    def training(self, version: str) -> pd.DataFrame:
        """The data version ``version`` was made from (its lineage's files)."""
        if version not in self._training:
            what = f"monitor: the training data of {self.model} version {version}"
            used = lineage.of_version(self.client, self.model, version, what)
            self._training[version] = frames.load(self.ctx, used.files, what)
        return self._training[version]

    def features(self, batch: pd.DataFrame) -> list[str]:
        named = split_names(self.cfg.features)
        if named:
            return named
        columns = getattr(self.ctx.plugin, "feature_columns", None)
        if columns is None:
            raise BadInput(
                f"[monitor] features: the {self.ctx.plugin.name} model plugin does not name its "
                "feature columns; list them (MLPIPE_MONITOR_FEATURES)"
            )
        return list(columns(batch))

    def _prediction_column(self, predictions: pd.DataFrame, run_id: str) -> str:
        if self.cfg.prediction:
            if self.cfg.prediction not in predictions.columns:
                raise BadInput(
                    f"[monitor] prediction {self.cfg.prediction!r}: not a column of the "
                    f"predictions of run {run_id} ({', '.join(predictions.columns)})"
                )
            return self.cfg.prediction
        named = [c for c in predictions.columns if str(c).startswith("predicted")]
        if len(named) != 1:
            raise BadInput(
                f"run {run_id}: {len(named)} prediction columns named predicted* in "
                f"{', '.join(predictions.columns)}; set [monitor] prediction"
            )
        return str(named[0])

    def evaluate(self, run: Run) -> Figures | str:
        """The figures of one batch, or why it waits (its truth has not all arrived)."""
        cfg = self.cfg
        run_id = run.info.run_id
        version = run.data.tags.get(TAG_VERSION, "")
        if not version:
            raise MlpipeError(f"infer run {run_id}: no tag {TAG_VERSION}; not a batch of mlpipe")
        predictions = self._csvs(
            self._json_artifact(run, OUTPUTS_ARTIFACT).get("predictions") or [],
            f"the predictions of run {run_id}",
        )
        if cfg.key not in predictions.columns:
            raise BadInput(
                f"[monitor] key {cfg.key!r}: not a column of the predictions of run {run_id}"
            )
        column = self._prediction_column(predictions, run_id)
        truth = self.truth()[cfg.target]
        joined = predictions[[cfg.key, column]].join(truth, on=cfg.key, how="inner")
        coverage = len(joined) / len(predictions) if len(predictions) else 0.0
        if not len(joined) or coverage < cfg.min_coverage:
            return (
                f"waiting for truth: {len(joined)} of {len(predictions)} row(s) have it "
                f"(min_coverage {cfg.min_coverage:g})"
            )
        error = joined[column].to_numpy(dtype=float) - joined[cfg.target].to_numpy(dtype=float)
        inputs = frames.load(
            self.ctx, self._json_artifact(run, "data.json").get("data") or [], f"run {run_id}"
        )
        trained = self.training(version)
        drift: dict[str, float] = {}
        for feature in self.features(inputs):
            for frame, what in ((inputs, f"the inputs of run {run_id}"), (trained, "training")):
                if feature not in frame.columns:
                    raise BadInput(
                        f"monitor: feature {feature!r} is not a column of {what} data of "
                        f"{self.model} version {version}; check [monitor] features"
                    )
            try:
                expected = trained[feature].to_numpy(dtype=float)
                actual = inputs[feature].to_numpy(dtype=float)
            except (TypeError, ValueError):
                raise BadInput(
                    f"monitor: feature {feature!r} of run {run_id} or of the training data of "
                    f"{self.model} version {version} is not numeric; list numeric features in "
                    "[monitor] features"
                ) from None
            drift[feature] = psi.psi(expected, actual, cfg.bins)
        return Figures(
            rows=len(joined),
            coverage=coverage,
            rmse=float(math.sqrt(float(np.mean(error**2)))),
            mae=float(np.mean(np.abs(error))),
            psi=drift,
        )

    # ----------------------------------------------------------------- pass
    def breach(self, figures: Figures) -> str | None:
        """Why the figures call for a retrain, or None."""
        cfg = self.cfg
        reasons = []
        if cfg.psi_threshold > 0 and figures.psi_max > cfg.psi_threshold:
            reasons.append(
                f"psi {figures.psi_max:.3g} ({figures.drift_feature}) above psi_threshold "
                f"{cfg.psi_threshold:g}"
            )
        error = figures.rmse if cfg.error_metric == "rmse" else figures.mae
        if cfg.error_threshold > 0 and error > cfg.error_threshold:
            reasons.append(
                f"{cfg.error_metric} {error:.4g} above error_threshold {cfg.error_threshold:g}"
            )
        return "; ".join(reasons) or None

    def _log(self, monitor_run: str, step: int, figures: Figures, triggered: bool) -> None:
        from mlflow.entities import Metric

        values = {
            "rmse": figures.rmse,
            "mae": figures.mae,
            "rows": float(figures.rows),
            "coverage": figures.coverage,
            DRIFT: figures.psi_max,
            "retrain_triggered": 1.0 if triggered else 0.0,
            **{f"psi.{_metric_name(k)}": v for k, v in figures.psi.items()},
        }
        if self.cfg.psi_threshold > 0:
            values[threshold_metric(DRIFT)] = self.cfg.psi_threshold
        if self.cfg.error_threshold > 0:
            values[threshold_metric(self.cfg.error_metric)] = self.cfg.error_threshold
        metrics = [Metric(k, float(v), step, step) for k, v in values.items()]
        with as_mlpipe_errors(f"monitor: logging to the monitor run {monitor_run}"):
            self.client.log_batch(monitor_run, metrics=metrics)

    def _logged_steps(self, monitor_run: str) -> set[int]:
        with as_mlpipe_errors(f"monitor: reading the monitor run {monitor_run}"):
            return {m.step for m in self.client.get_metric_history(monitor_run, "rows")}

    def run(self) -> Pass:
        """Evaluate every batch whose truth has arrived; trigger a retrain above a threshold."""
        done = Pass(self.model)
        experiments = self.experiment_ids()
        batches = self.batches(list(experiments)) if experiments else []
        if not batches:
            self.say(f"monitor {self.model}: no batch to evaluate")
            return done
        with TriggerState(self.cfg, self.model) as trigger:
            runs: dict[str, str] = {}
            logged: dict[str, set[int]] = {}
            for batch in batches:
                run_id, step = batch.info.run_id, int(batch.info.start_time)
                version = batch.data.tags.get(TAG_VERSION, "")
                label = f"batch {run_id} (version {version}, {_iso(step)})"
                try:
                    result = self.evaluate(batch)
                except MlpipeError as exc:
                    done.failed.append((run_id, str(exc)))
                    self.say(f"monitor {self.model}: {label}: failed: {exc}")
                    continue
                if isinstance(result, str):
                    done.waiting.append((run_id, result))
                    self.say(f"monitor {self.model}: {label}: {result}")
                    continue
                exp = str(batch.info.experiment_id)
                if exp not in runs:
                    runs[exp] = self.monitor_run(exp)
                    logged[exp] = self._logged_steps(runs[exp])
                summary = result.text()
                decision: Decision | None = None
                if step not in logged[exp]:  # not logged by a pass that failed before the tag
                    reason = self.breach(result)
                    if reason is not None:
                        decision = trigger.request(f"{reason} in {label} of {self.model}", version)
                        done.decisions.append(decision)
                        summary += f"; {reason}: {decision.message}"
                    triggered = decision is not None and decision.outcome == "triggered"
                    self._log(runs[exp], step, result, triggered)
                    logged[exp].add(step)
                with as_mlpipe_errors(f"monitor: tagging the batch run {run_id}"):
                    self.client.set_tag(run_id, TAG_MONITOR_RUN, runs[exp])
                    self.client.set_tag(run_id, TAG_MONITOR, summary[:4900])
                done.evaluated.append((run_id, result))
                self.say(f"monitor {self.model}: {label}: {summary}")
        return done


def _metric_name(feature: str) -> str:
    """A feature name as MLflow accepts in a metric name (other characters as ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.\- /]", "_", feature)


def _iso(ms: int) -> str:
    from mlpipe.monitor.trigger import when

    return when(ms / 1000)
