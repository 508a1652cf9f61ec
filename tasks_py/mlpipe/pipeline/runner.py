"""``mlpipe pipeline validate|run``: load, validate, then hand the plan to an executor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from mlpipe.pipeline.executors import StepRunner, get_executor
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.spec import Pipeline, load_pipeline
from mlpipe.pipeline.step import OK_STATUSES, STATUSES, StepOutcome, StepStatus
from mlpipe.pipeline.validate import Report, validate

if TYPE_CHECKING:
    from mlpipe.tasks.context import TaskContext


@dataclass(frozen=True)
class PipelineRun:
    """The outcome of every step of one run of a pipeline (in the pipeline file's order)."""

    pipeline: str
    pipeline_run: str
    outcomes: dict[str, StepOutcome]

    @property
    def counts(self) -> dict[StepStatus, int]:
        return {s: sum(o.status == s for o in self.outcomes.values()) for s in STATUSES}

    @property
    def failed(self) -> list[StepOutcome]:
        return [o for o in self.outcomes.values() if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return all(o.status in OK_STATUSES for o in self.outcomes.values())

    @property
    def exit_code(self) -> int:
        """0 every step ok, 2 every failure is bad input, else 1."""
        if self.ok:
            return EXIT_OK
        failed = self.failed
        return EXIT_BAD_INPUT if failed and all(o.bad_input for o in failed) else EXIT_FAILED

    def summary(self) -> dict[str, Any]:
        """The machine-readable summary printed by ``mlpipe pipeline run --json``."""
        return {
            "pipeline": self.pipeline,
            "pipeline_run": self.pipeline_run,
            "ok": self.ok,
            "counts": self.counts,
            "steps": {
                name: {
                    "status": o.status,
                    "run_id": o.run_id,
                    "summary": o.summary,
                    "outputs": o.outputs,
                    "bad_input": o.bad_input,
                }
                for name, o in self.outcomes.items()
            },
        }


def check(path: Path | str, ctx: TaskContext) -> tuple[Pipeline, Report]:
    """Load and validate; raises BadInput listing every error."""
    pipeline = load_pipeline(path)
    report = validate(pipeline, ctx.plugin)
    report.raise_errors(pipeline)
    return pipeline, report


def run_pipeline(
    path: Path | str,
    ctx: TaskContext,
    executor: str = "local",
    force: bool = False,
    max_workers: int | None = None,
) -> PipelineRun:
    """Run every step (skipping unchanged ones) and return the outcome of each."""
    pipeline, _ = check(path, ctx)
    workers = max_workers or ctx.config.pipeline.max_workers
    runner = get_executor(executor, ctx.config, max_workers=workers)
    plan = Plan(pipeline, pipeline_run=uuid.uuid4().hex[:12], force=force)
    outcomes = runner.run(plan, StepRunner(ctx, force=force))
    ordered = {name: outcomes[name] for name in pipeline.steps if name in outcomes}
    return PipelineRun(pipeline.name, plan.pipeline_run, ordered)
