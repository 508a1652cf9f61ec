"""The executor interface: ``run(plan, steps) -> dict[str, StepOutcome]``.

``steps`` is the :class:`StepRunner` the pipeline runner hands every executor:
it runs a job in this process (``run``), tells whether a job is unchanged since
its last success (``unchanged``, for executors that decide on the controller
what to submit), and carries the task context (config, MLflow set up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.step import StepJob, StepOutcome, run_step, unchanged

if TYPE_CHECKING:
    from mlpipe.config import Config
    from mlpipe.tasks.context import TaskContext


@dataclass(frozen=True)
class StepRunner:
    """What an executor may do with a step's job, in this process."""

    ctx: TaskContext
    force: bool = False

    def run(self, job: StepJob) -> StepOutcome:
        """Run (or skip) the job here; raises on failure."""
        return run_step(job, self.ctx)

    def unchanged(self, job: StepJob) -> StepOutcome | None:
        """A ``skipped`` outcome if the job is unchanged (never when forced), else None."""
        return None if self.force or job.force else unchanged(job, self.ctx)


class Executor(Protocol):
    name: str

    def run(self, plan: Plan, steps: StepRunner) -> dict[str, StepOutcome]: ...


ExecutorFactory = Callable[[int, "Config"], Executor]
"""Makes an executor from (max_workers, the effective config)."""
