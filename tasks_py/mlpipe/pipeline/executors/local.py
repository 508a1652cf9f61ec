"""The local executor: independent steps run concurrently in a thread pool."""

from __future__ import annotations

import concurrent.futures as cf
import logging

from mlpipe.errors import BadInput
from mlpipe.pipeline.executors.base import StepRunner
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.step import StepOutcome

log = logging.getLogger(__name__)


class LocalExecutor:
    name = "local"

    def __init__(self, max_workers: int = 2) -> None:
        self.max_workers = max(1, int(max_workers))

    def run(self, plan: Plan, steps: StepRunner) -> dict[str, StepOutcome]:
        outcomes: dict[str, StepOutcome] = {}
        running: dict[cf.Future[StepOutcome], str] = {}
        with cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="mlpipe-step") as pool:
            while True:
                for step in plan.ready(outcomes, set(running.values())):
                    try:
                        job = plan.job(step, outcomes)
                    except BadInput as exc:
                        outcomes[step] = StepOutcome(
                            step, "failed", summary=str(exc), bad_input=True
                        )
                        continue
                    running[pool.submit(steps.run, job)] = step
                for step in plan.blocked(outcomes):
                    outcomes[step] = StepOutcome(step, "blocked", summary="a dependency failed")
                if not running:
                    break
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    step = running.pop(future)
                    outcomes[step] = _outcome(step, future)
        return outcomes


def _outcome(step: str, future: cf.Future[StepOutcome]) -> StepOutcome:
    try:
        return future.result()
    except BadInput as exc:
        return StepOutcome(step, "failed", summary=str(exc), bad_input=True)
    except Exception as exc:  # noqa: BLE001 - a step's failure must not stop the others
        log.debug("step %s failed", step, exc_info=True)
        return StepOutcome(step, "failed", summary=f"{exc.__class__.__name__}: {exc}")
