"""``mlpipe pipeline validate|run``: load, validate, then hand the plan to an executor."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from mlpipe.pipeline.executors import get_executor
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.spec import Pipeline, load_pipeline
from mlpipe.pipeline.step import StepOutcome, run_step
from mlpipe.pipeline.validate import Report, validate


def check(path: Path | str, ctx: Any) -> tuple[Pipeline, Report]:
    """Load and validate; raises BadInput listing every error."""
    pipeline = load_pipeline(path)
    report = validate(pipeline, ctx.plugin)
    report.raise_errors(pipeline)
    return pipeline, report


def run_pipeline(
    path: Path | str,
    ctx: Any,
    executor: str = "local",
    force: bool = False,
    max_workers: int | None = None,
) -> dict[str, StepOutcome]:
    """Run every step (skipping unchanged ones) and return the outcome of each."""
    pipeline, _ = check(path, ctx)
    workers = max_workers or ctx.config.pipeline.max_workers
    runner = get_executor(executor, max_workers=workers)
    plan = Plan(pipeline, pipeline_run=uuid.uuid4().hex[:12], force=force)
    return runner.run(plan, lambda job: run_step(job, ctx))
