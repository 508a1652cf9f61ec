"""Executors run a :class:`Plan`: each step once its dependencies succeeded.

The interface is one method, ``run(plan, steps) -> dict[str, StepOutcome]``
(:mod:`mlpipe.pipeline.executors.base`). The local executor asks
``plan.job(step, outcomes)`` for a step's job when its dependencies are done
and runs it with ``steps.run`` in a thread. A remote executor submits
``plan.template(step)`` jobs (inputs named as producer outputs) to
``python -m mlpipe.pipeline.step JOB OUTCOME --upstream ...`` on a node, after
asking ``steps.unchanged(job)`` which steps need not be submitted. A failed
step's dependents are ``blocked``; independent steps still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from mlpipe.errors import BadInput
from mlpipe.pipeline.executors.base import Executor, ExecutorFactory, StepRunner

if TYPE_CHECKING:
    from mlpipe.config import Config


def _local(max_workers: int, config: Config) -> Executor:
    from mlpipe.pipeline.executors.local import LocalExecutor

    return LocalExecutor(max_workers)


def _daliuge(max_workers: int, config: Config) -> Executor:
    from mlpipe.pipeline.executors.daliuge import DaliugeExecutor

    return DaliugeExecutor(config.daliuge)


def _slurm(max_workers: int, config: Config) -> Executor:
    from mlpipe.pipeline.executors.slurm import SlurmExecutor

    return SlurmExecutor(config.slurm)


# executor name -> factory(max_workers, config)
EXECUTORS: Mapping[str, ExecutorFactory] = MappingProxyType(
    {"local": _local, "daliuge": _daliuge, "slurm": _slurm}
)
PLANNED: tuple[str, ...] = ()


def check_executor(name: str) -> None:
    """BadInput naming ``--executor`` if ``name`` is not an executor."""
    if name not in EXECUTORS:
        later = (
            f" ({', '.join(p for p in PLANNED if p not in EXECUTORS)} are planned)"
            if name in PLANNED
            else ""
        )
        raise BadInput(
            f"--executor {name}: unknown executor{later}; available: {', '.join(EXECUTORS)}"
        )


def get_executor(name: str, config: Config, max_workers: int = 2) -> Executor:
    check_executor(name)
    return EXECUTORS[name](max_workers, config)


__all__ = ["EXECUTORS", "Executor", "StepRunner", "check_executor", "get_executor"]
