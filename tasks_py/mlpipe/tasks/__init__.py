"""The thin task scripts: load-raw, preprocess, train, retrain, infer, promote.

Each task runs three ways with the same code:

* ``mlpipe <task> ...`` (the one CLI);
* ``python -m mlpipe.tasks.<module> ...`` (a script on a node, no daemon);
* :func:`run_task` ``(name, inputs, params)`` for executors.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from mlpipe.errors import BadInput
from mlpipe.tasks.spec import REQUIRED, TaskResult, TaskSpec

# task name -> module under mlpipe.tasks
TASK_MODULES: dict[str, str] = {
    "load-raw": "load_raw",
    "preprocess": "preprocess",
    "train": "train",
    "retrain": "retrain",
    "infer": "infer",
    "promote": "promote",
}


def get_spec(name: str) -> TaskSpec:
    if name not in TASK_MODULES:
        raise BadInput(f"unknown task {name!r}; known tasks: {', '.join(TASK_MODULES)}")
    return importlib.import_module(f"mlpipe.tasks.{TASK_MODULES[name]}").SPEC


def accepted_params(spec: TaskSpec, plugin: object | None) -> dict[str, Any]:
    """Parameter name -> default (task's own, then the model plugin's)."""
    extra = dict(getattr(plugin, spec.plugin_params, {}) or {}) if spec.plugin_params else {}
    return {**extra, **spec.params}


def check_params(spec: TaskSpec, params: Mapping[str, Any], plugin: object | None) -> list[str]:
    """Problems with ``params`` for ``spec`` (unknown or missing), as messages."""
    known = accepted_params(spec, plugin)
    problems = [
        f"unknown parameter {key!r} of task {spec.name}; known: {', '.join(sorted(known))}"
        for key in params
        if key not in known
    ]
    problems += [
        f"task {spec.name} needs parameter {key!r}"
        for key, default in spec.params.items()
        if default is REQUIRED and key not in params
    ]
    return problems


def run_task(
    name: str,
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    ctx: Any = None,
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
) -> TaskResult:
    """Run task ``name`` in this process (the entry point for executors)."""
    from mlpipe.tasks.context import TaskContext

    spec = get_spec(name)
    ctx = ctx or TaskContext.from_config()
    inputs, params = dict(inputs or {}), dict(params or {})
    problems = check_params(spec, params, ctx.plugin)
    problems += [
        f"unknown input {slot!r} of task {name}; known: {', '.join(spec.inputs) or 'none'}"
        for slot in inputs
        if slot not in spec.inputs
    ]
    problems += [
        f"task {name} needs input {slot!r}"
        for slot, required in spec.inputs.items()
        if required and slot not in inputs
    ]
    if problems:
        raise BadInput("; ".join(problems))
    return spec.func(ctx, inputs, params, tags=tags, experiment=experiment)


__all__ = [
    "REQUIRED",
    "TASK_MODULES",
    "TaskResult",
    "TaskSpec",
    "accepted_params",
    "check_params",
    "get_spec",
    "run_task",
]
