"""The executor interface: ``run(plan, run_job) -> dict[str, StepOutcome]``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.step import StepJob, StepOutcome

RunJob = Callable[[StepJob], StepOutcome]


class Executor(Protocol):
    name: str

    def run(self, plan: Plan, run_job: RunJob) -> dict[str, StepOutcome]: ...
