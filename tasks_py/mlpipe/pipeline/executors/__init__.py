"""Executors run a :class:`Plan`: each step once its dependencies succeeded.

The interface is one method, ``run(plan, run_job) -> dict[str, StepOutcome]``:
the executor asks ``plan.job(step, outcomes)`` for a step's job when its
dependencies are done and runs it with ``run_job`` (in a thread here; a
remote executor ships ``job.to_json()`` to ``python -m mlpipe.pipeline.step``).
A failed step's dependents are ``blocked``; independent steps still run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from mlpipe.errors import BadInput
from mlpipe.pipeline.executors.base import Executor, RunJob


def _local(max_workers: int) -> Executor:
    from mlpipe.pipeline.executors.local import LocalExecutor

    return LocalExecutor(max_workers)


# executor name -> factory(max_workers)
EXECUTORS: Mapping[str, Callable[[int], Executor]] = MappingProxyType({"local": _local})
PLANNED = ("daliuge", "slurm")


def get_executor(name: str, max_workers: int = 2) -> Executor:
    if name not in EXECUTORS:
        later = f" ({', '.join(PLANNED)} are planned)" if name in PLANNED else ""
        raise BadInput(
            f"--executor {name}: unknown executor{later}; available: {', '.join(EXECUTORS)}"
        )
    return EXECUTORS[name](max_workers)


__all__ = ["EXECUTORS", "Executor", "RunJob", "get_executor"]
