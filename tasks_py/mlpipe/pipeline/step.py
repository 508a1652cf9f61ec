"""One step of a pipeline run: skip it if unchanged since its last success, else run it.

A :class:`StepJob` is plain data (JSON round trip), so executors can ship it
to another node and run it there with ``python -m mlpipe.pipeline.step JOB.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlpipe.errors import BadInput, run_guarded
from mlpipe.tasks.registry import get_spec

if TYPE_CHECKING:
    from mlpipe.tasks.context import TaskContext

TAG_PIPELINE = "mlpipe.pipeline"
TAG_STEP = "mlpipe.step"
TAG_HASH = "mlpipe.hash"
TAG_PIPELINE_RUN = "mlpipe.pipeline_run"

StepStatus = Literal["ran", "skipped", "failed", "blocked"]
STATUSES: tuple[StepStatus, ...] = ("ran", "skipped", "failed", "blocked")
OK_STATUSES: tuple[StepStatus, ...] = ("ran", "skipped")


@dataclass(frozen=True)
class StepJob:
    pipeline: str
    step: str
    task: str
    experiment: str
    pipeline_run: str
    inputs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    force: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str, where: str = "job") -> StepJob:
        """The job in ``text``; BadInput naming ``where`` if it is not a job."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise BadInput(
                f"{where}: not JSON ({exc}); give a file written by StepJob.to_json"
            ) from None
        names = {f.name for f in fields(cls)}
        if not isinstance(doc, dict) or not {"pipeline", "step", "task"} <= set(doc) <= names:
            raise BadInput(f"{where}: not a step job; expected the keys {', '.join(sorted(names))}")
        return cls(**doc)


@dataclass(frozen=True)
class StepOutcome:
    step: str
    status: StepStatus
    run_id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    bad_input: bool = False


def _hash(job: StepJob, ctx: TaskContext) -> str:
    """The skip key of ``job``; MLflow failures other than "not found" raise (fail closed)."""
    import mlflow

    from mlpipe.pipeline.fingerprint import sources_digest, step_hash
    from mlpipe.tasks import modelref

    client = mlflow.MlflowClient()
    spec = get_spec(job.task)

    def resolve_model(text: str) -> str:
        try:
            return modelref.resolve(client, modelref.parse(text, ctx.config.model.alias)).uri
        except BadInput:  # no such model/version/alias (only that): the task reports it
            return f"unresolved:{text}"

    extra: dict[str, Any] = {"plugin": ctx.config.model.plugin}
    named = job.inputs.get("model") or job.params.get("model")
    if spec.default_model and not named:
        # the default model is an alias: its current version is part of the input
        extra["model"] = resolve_model(modelref.default_model(ctx.config.model))
    if spec.local_sources:
        sources = job.params.get("sources") or []
        sources = [sources] if isinstance(sources, str) else list(sources)
        extra["sources"] = sources_digest(sources, Path(job.params.get("base_dir") or "."))
    return step_hash(job.task, job.params, job.inputs, resolve_model, extra)


def last_success(job: StepJob, digest: str, ctx: TaskContext) -> str | None:
    """Run id of the newest FINISHED run of this step with this hash, if any."""
    import mlflow

    found = mlflow.MlflowClient().search_runs(
        [ctx.experiment_id(job.experiment)],
        filter_string=(
            f"tags.`{TAG_PIPELINE}` = '{job.pipeline}' and tags.`{TAG_STEP}` = '{job.step}' "
            f"and tags.`{TAG_HASH}` = '{digest}' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return str(found[0].info.run_id) if found else None


def run_step(job: StepJob, ctx: TaskContext) -> StepOutcome:
    """Skip (reusing the recorded outputs) or run the step's task; raises on failure."""
    from mlpipe.tasks.mlflow_errors import as_mlpipe_errors
    from mlpipe.tasks.registry import run_task
    from mlpipe.tasks.runs import read_outputs

    with as_mlpipe_errors(f"step {job.step}: looking for an unchanged earlier run"):
        digest = _hash(job, ctx)
        previous = None if job.force else last_success(job, digest, ctx)
        if previous:
            outputs = read_outputs(previous)
            return StepOutcome(job.step, "skipped", previous, outputs, "unchanged since this run")
    tags = {
        TAG_PIPELINE: job.pipeline,
        TAG_STEP: job.step,
        TAG_HASH: digest,
        TAG_PIPELINE_RUN: job.pipeline_run,
    }
    result = run_task(
        job.task, job.inputs, job.params, ctx=ctx, tags=tags, experiment=job.experiment
    )
    return StepOutcome(job.step, "ran", result.run_id, result.outputs, result.summary)


def main(argv: list[str] | None = None) -> int:
    """``python -m mlpipe.pipeline.step JOB.json [OUTCOME.json]`` (for remote executors)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m mlpipe.pipeline.step JOB.json [OUTCOME.json]", file=sys.stderr)
        return 2
    return run_guarded(f"step {argv[0]}", lambda: _run_job_file(argv))


def _run_job_file(argv: list[str]) -> int:
    from mlpipe.tasks.context import TaskContext

    try:
        text = Path(argv[0]).read_text()
    except OSError as exc:
        raise BadInput(f"cannot read the job file: {exc}") from None
    job = StepJob.from_json(text, argv[0])
    outcome = run_step(job, TaskContext.from_config())
    text = json.dumps(asdict(outcome))
    if len(argv) > 1:
        Path(argv[1]).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
