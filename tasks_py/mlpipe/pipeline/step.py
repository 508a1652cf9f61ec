"""One step of a pipeline run: skip it if unchanged since its last success, else run it.

A :class:`StepJob` is plain data (JSON round trip), so executors can ship it
to another node and run it there with ``python -m mlpipe.pipeline.step JOB.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlpipe.errors import BadInput, MlpipeError

TAG_PIPELINE = "mlpipe.pipeline"
TAG_STEP = "mlpipe.step"
TAG_HASH = "mlpipe.hash"
TAG_PIPELINE_RUN = "mlpipe.pipeline_run"


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
    def from_json(cls, text: str) -> StepJob:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class StepOutcome:
    step: str
    status: str  # "ran" | "skipped" | "failed" | "blocked"
    run_id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    bad_input: bool = False


def _hash(job: StepJob, ctx: Any) -> str:
    import mlflow

    from mlpipe.pipeline.fingerprint import sources_digest, step_hash
    from mlpipe.tasks import modelref

    client = mlflow.MlflowClient()

    def resolve_model(text: str) -> str:
        try:
            return modelref.resolve(client, modelref.parse(text, ctx.config.model.alias)).uri
        except BadInput:
            return f"unresolved:{text}"  # the task itself reports it

    extra: dict[str, Any] = {"plugin": ctx.config.model.plugin}
    named = job.inputs.get("model") or job.params.get("model")
    if job.task in ("infer", "retrain") and not named:
        # the default model is an alias: its current version is part of the input
        model = ctx.config.model
        extra["model"] = resolve_model(f"models:/{model.name}@{model.alias}")
    if job.task == "load-raw":
        sources = job.params.get("sources") or []
        sources = [sources] if isinstance(sources, str) else list(sources)
        extra["sources"] = sources_digest(sources, Path(job.params.get("base_dir") or "."))
    return step_hash(job.task, job.params, job.inputs, resolve_model, extra)


def last_success(job: StepJob, digest: str, ctx: Any) -> str | None:
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
    return found[0].info.run_id if found else None


def run_step(job: StepJob, ctx: Any) -> StepOutcome:
    """Skip (reusing the recorded outputs) or run the step's task; raises on failure."""
    from mlpipe.tasks import run_task
    from mlpipe.tasks.runs import read_outputs

    digest = _hash(job, ctx)
    if not job.force and (previous := last_success(job, digest, ctx)):
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
    from mlpipe.tasks.context import TaskContext

    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m mlpipe.pipeline.step JOB.json [OUTCOME.json]", file=sys.stderr)
        return 2
    try:
        job = StepJob.from_json(Path(argv[0]).read_text())
        outcome = run_step(job, TaskContext.from_config())
    except BadInput as exc:
        print(f"step {argv[0]}: {exc}", file=sys.stderr)
        return 2
    except (MlpipeError, OSError, ValueError, TypeError) as exc:
        print(f"step {argv[0]}: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(asdict(outcome))
    if len(argv) > 1:
        Path(argv[1]).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
