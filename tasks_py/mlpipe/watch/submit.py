"""Start the configured pipeline for one archived file.

The pipeline declares the data name the watcher gives (``inputs: [incoming]``,
``[watch] input``); its steps consume it like any produced data. The file set
given is the one NGAS entry of the archived file, so the step hashes change
with every new file (or version) and an unchanged re-submission (after a
crash) skips the steps that already finished.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.errors import BadInput
from mlpipe.pipeline.executors import StepRunner, check_executor, get_executor
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.runner import PipelineRun
from mlpipe.pipeline.spec import Pipeline, load_pipeline
from mlpipe.pipeline.step import StepJob
from mlpipe.pipeline.validate import validate

if TYPE_CHECKING:
    from mlpipe.tasks.context import TaskContext

TAG_WATCH_FILE = "mlpipe.watch.file"  # the watched file's NGAS id and version, on every run
TAG_WATCH = "mlpipe.watch"  # the watcher's name


@dataclass(frozen=True)
class InputPlan(Plan):
    """A plan whose declared pipeline inputs are given as values (file sets)."""

    given: Mapping[str, Any] = field(default_factory=dict)  # data name -> file set
    tags: Mapping[str, str] = field(default_factory=dict)  # on every step's runs

    def template(self, step_name: str) -> StepJob:
        step = self.pipeline.steps[step_name]
        external = {slot: data for slot, data in step.inputs.items() if data in self.given}
        inner = {slot: data for slot, data in step.inputs.items() if data not in self.given}
        steps = {**self.pipeline.steps, step_name: replace(step, inputs=inner)}
        job = Plan(replace(self.pipeline, steps=steps), self.pipeline_run, self.force).template(
            step_name
        )
        inputs = {**job.inputs, **{slot: self.given[data] for slot, data in external.items()}}
        return replace(job, inputs=inputs, tags={**job.tags, **self.tags})


def check(path: Path | str, ctx: TaskContext, input_name: str, executor: str) -> Pipeline:
    """The pipeline at ``path``, valid when ``input_name`` is given; BadInput naming the key."""
    pipeline = load_pipeline(path)
    if input_name not in pipeline.inputs:
        declared = ", ".join(pipeline.inputs) or "none"
        raise BadInput(
            f"[watch] input {input_name!r}: pipeline {path} does not declare it "
            f"(its inputs: {declared}); add `inputs: [{input_name}]` to it and consume "
            f"it in a step (e.g. preprocess inputs: {{raw: {input_name}}})"
        )
    report = validate(pipeline, ctx.plugin, given={input_name})
    report.raise_errors(pipeline)
    check_executor(executor)
    return pipeline


def start(
    pipeline: Pipeline,
    ctx: TaskContext,
    executor: str,
    given: Mapping[str, Any],
    tags: Mapping[str, str],
) -> PipelineRun:
    """Run ``pipeline`` with the ``given`` inputs through ``executor`` (unchanged steps skip)."""
    runner = get_executor(executor, ctx.config, max_workers=ctx.config.pipeline.max_workers)
    plan = InputPlan(pipeline, uuid.uuid4().hex[:12], given=dict(given), tags=dict(tags))
    outcomes = runner.run(plan, StepRunner(ctx))
    ordered = {name: outcomes[name] for name in pipeline.steps if name in outcomes}
    return PipelineRun(pipeline.name, plan.pipeline_run, ordered)
