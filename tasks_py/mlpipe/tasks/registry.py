"""The task registry: every task's :class:`TaskSpec`, and :func:`run_task` for executors.

Importing it imports the task modules, which keep MLflow and pandas imports
inside their functions (``mlpipe --help`` stays fast).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Unpack

from mlpipe.errors import BadInput
from mlpipe.tasks import check, convert, infer, load_raw, preprocess, promote, retrain, train
from mlpipe.tasks.invoke import RunOptions, run_spec
from mlpipe.tasks.spec import TaskResult, TaskSpec

# In the order the CLI lists them.
TASKS: Mapping[str, TaskSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            load_raw.SPEC,
            preprocess.SPEC,
            train.SPEC,
            retrain.SPEC,
            infer.SPEC,
            promote.SPEC,
            convert.SPEC,
            check.SPEC,
        )
    }
)


def get_spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise BadInput(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def run_task(
    name: str,
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    **options: Unpack[RunOptions],
) -> TaskResult:
    """Run task ``name`` in this process (the entry point for executors)."""
    return run_spec(get_spec(name), inputs, params, **options)
