"""Executors run a :class:`Plan`: each step once its dependencies succeeded.

The interface is one method, ``run(plan, run_job) -> dict[str, StepOutcome]``:
the executor asks ``plan.job(step, outcomes)`` for a step's job when its
dependencies are done and runs it with ``run_job`` (in a thread here; a
remote executor ships ``job.to_json()`` to ``python -m mlpipe.pipeline.step``).
A failed step's dependents are ``blocked``; independent steps still run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

from mlpipe.errors import BadInput
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.step import StepJob, StepOutcome

RunJob = Callable[[StepJob], StepOutcome]

EXECUTORS = {"local": "mlpipe.pipeline.executors.local:LocalExecutor"}
PLANNED = ("daliuge", "slurm")


class Executor(Protocol):
    name: str

    def run(self, plan: Plan, run_job: RunJob) -> dict[str, StepOutcome]: ...


def get_executor(name: str, **options: object) -> Executor:
    if name not in EXECUTORS:
        later = f" ({', '.join(PLANNED)} are planned)" if name in PLANNED else ""
        raise BadInput(
            f"--executor {name}: unknown executor{later}; available: {', '.join(EXECUTORS)}"
        )
    module, _, cls = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(**options)


__all__ = ["EXECUTORS", "Executor", "RunJob", "get_executor"]
