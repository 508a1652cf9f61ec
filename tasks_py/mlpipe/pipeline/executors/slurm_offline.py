"""Offline Slurm jobs: compute nodes without a route to MLflow or NGAS (``[slurm] offline``).

Before submitting, :func:`stage_inputs` downloads the step's NGAS input files
into a read cache of their own (``<step>.offline/in/cache``) that the job reads
in cache mode ``offline`` (no request to NGAS), and :func:`job_env` points the
job's MLflow at a SQLite store and file artifacts in ``<step>.offline/out``.
After the job, the submitting side pulls ``out`` back and :func:`upload`
recreates the run on the real tracking server: params, metric histories, tags,
artifacts, and each model version it registered (with its version tags and
aliases) as a new version of the same registered model; the outputs and the
``mlpipe.model_version`` tag name the new version.

Tasks in :data:`OFFLINE_TASKS` only: they read NGAS files and write to MLflow
alone. Tasks that archive NGAS files or read registered models on the node
(preprocess, load-raw, retrain, infer, promote, convert, check) are refused in offline mode
(planned: an outbox directory archived from the submitting side).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlpipe.config import Config
from mlpipe.errors import BadInput
from mlpipe.pipeline.step import StepJob, StepOutcome

OFFLINE_TASKS = frozenset({"train"})
TAG_OFFLINE_RUN = "mlpipe.slurm.offline_run"  # the run id the job recorded on the node
OUTPUTS_ARTIFACT = "mlpipe/outputs.json"  # mlpipe.tasks.runs.OUTPUTS_ARTIFACT
MODEL_ARTIFACT = "model"


def check_task(job: StepJob) -> None:
    if job.task not in OFFLINE_TASKS:
        raise BadInput(
            f"step {job.step}: task {job.task} cannot run offline yet ([slurm] offline = true "
            f"runs only {', '.join(sorted(OFFLINE_TASKS))}); run this step with [slurm] "
            "offline = false or another executor"
        )


def _file_items(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                yield item


def stage_inputs(job: StepJob, config: Config, cache_dir: Path) -> int:
    """Download every NGAS file of the job's inputs into ``cache_dir``; how many."""
    from mlpipe.storage import ReadCache
    from mlpipe.storage.ngas import client_options

    cache = ReadCache(
        cache_dir,
        default_url=config.ngas.url,
        mode="good",  # always ask NGAS for the newest version of an unversioned id
        client_options=client_options(config.ngas),
        max_size=2**62,  # the staged inputs are never evicted
    )
    count = 0
    for value in job.inputs.values():
        for item in _file_items(value):
            cache.fetch(item["id"], version=item.get("version"))
            count += 1
    with sqlite3.connect(cache_dir / "index.sqlite3") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the index in one file for the copy
    return count


def job_env(config: Config, remote_offline: str) -> dict[str, str]:
    """The job's settings: staged cache, offline mode, MLflow in files of its own."""
    return {
        "MLPIPE_CACHE_DIR": f"{remote_offline}/in/cache",
        "MLPIPE_CACHE_MODE": "offline",
        "MLPIPE_NGAS_URL": config.ngas.url,  # names the cache entries; never contacted
        "MLPIPE_MLFLOW_TRACKING_URI": f"sqlite:///{remote_offline}/out/mlflow.db",
        "MLPIPE_MLFLOW_ARTIFACT_ROOT": f"file://{remote_offline}/out/artifacts",
        "MLPIPE_MLFLOW_TRACKING_TOKEN": "",
        "MLFLOW_TRACKING_TOKEN": "",
    }


def _local(uri: str, remote_out: str, local_out: Path) -> Path:
    prefix = f"file://{remote_out}"
    if not uri.startswith(prefix):
        raise BadInput(f"offline job: artifact location {uri} is not under {prefix}")
    return local_out / uri[len(prefix) :].lstrip("/")


def upload(
    outcome: StepOutcome,
    local_out: Path,
    remote_out: str,
    experiment_id: Any,
) -> StepOutcome:
    """Recreate the job's run (and model versions) on the real server; the rewritten outcome.

    ``experiment_id(name)`` gives the real server's experiment id (created if new).
    """
    import mlflow

    store = f"sqlite:///{local_out}/mlflow.db"
    src = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    dst = mlflow.MlflowClient()
    old = src.get_run(outcome.run_id)
    exp = src.get_experiment(old.info.experiment_id)
    tags = {k: v for k, v in old.data.tags.items() if not k.startswith("mlflow.")}
    tags[TAG_OFFLINE_RUN] = old.info.run_id
    new = dst.create_run(
        experiment_id(exp.name),
        start_time=old.info.start_time,
        tags=tags,
        run_name=old.info.run_name,
    )
    new_id = new.info.run_id
    try:
        outcome = _copy_into(src, dst, old, new, outcome, remote_out, local_out)
    except BaseException:
        # a half-copied run must not look like a running or finished one
        with contextlib.suppress(Exception):
            dst.set_terminated(new_id, "FAILED")
        raise
    return outcome


def _copy_into(
    src: Any, dst: Any, old: Any, new: Any, outcome: StepOutcome, remote_out: str, local_out: Path
) -> StepOutcome:
    """Copy params, metrics, artifacts and model versions of ``old`` into ``new``."""
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    new_id = new.info.run_id
    tags = new.data.tags
    params = [Param(k, v) for k, v in old.data.params.items()]
    metrics = [
        Metric(m.key, m.value, m.timestamp, m.step)
        for key in old.data.metrics
        for m in src.get_metric_history(old.info.run_id, key)
    ]
    for i in range(0, max(len(params), len(metrics)), 100):
        dst.log_batch(new_id, metrics=metrics[i : i + 100], params=params[i : i + 100])

    art = _local(old.info.artifact_uri, remote_out, local_out)
    for entry in sorted(art.iterdir()) if art.is_dir() else []:
        if entry.is_dir():
            dst.log_artifacts(new_id, str(entry), entry.name)
        elif entry.is_file():
            dst.log_artifact(new_id, str(entry))

    renamed: dict[str, str] = {}
    for mv in src.search_model_versions(f"run_id = '{old.info.run_id}'"):
        model_dir = _model_dir(src, str(mv.source), remote_out, local_out)
        path = f"{MODEL_ARTIFACT}-{mv.name}-{mv.version}" if renamed else MODEL_ARTIFACT
        dst.log_artifacts(new_id, str(model_dir), path)
        try:
            dst.create_registered_model(mv.name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version_tags = {
            k: (new_id if k == "mlpipe.run_id" else v) for k, v in (mv.tags or {}).items()
        }
        made = dst.create_model_version(
            mv.name,
            source=f"{new.info.artifact_uri}/{path}",
            run_id=new_id,
            tags=version_tags,
            description=mv.description or None,
        )
        for alias in getattr(mv, "aliases", None) or []:
            dst.set_registered_model_alias(mv.name, alias, made.version)
        renamed[f"models:/{mv.name}/{mv.version}"] = f"models:/{mv.name}/{made.version}"
        if tags.get("mlpipe.model_version") == str(mv.version):
            dst.set_tag(new_id, "mlpipe.model_version", str(made.version))
        outcome = replace(
            outcome,
            summary=outcome.summary.replace(
                f"{mv.name} version {mv.version}", f"{mv.name} version {made.version}"
            ),
        )
    outputs = {k: _rename(v, renamed) for k, v in outcome.outputs.items()}
    recorded = art / OUTPUTS_ARTIFACT
    if recorded.is_file():
        dst.log_dict(new_id, outputs, OUTPUTS_ARTIFACT)  # overwrites the node's copy
    dst.set_terminated(new_id, old.info.status, end_time=old.info.end_time)
    return replace(outcome, run_id=new_id, outputs=outputs)


def _model_dir(src: Any, source: str, remote_out: str, local_out: Path) -> Path:
    """The local directory of a model version's files (MLflow 3 logged model or a run path)."""
    if source.startswith("models:/") and "/" not in source[len("models:/") :]:
        location = src.get_logged_model(source[len("models:/") :]).artifact_location
        return _local(str(location), remote_out, local_out)
    return _local(source, remote_out, local_out)


def _rename(value: Any, renamed: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return renamed.get(value, value)
    if isinstance(value, list):
        return [_rename(v, renamed) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v, renamed) for k, v in value.items()}
    return value
