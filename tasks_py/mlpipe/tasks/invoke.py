"""Running one task from its spec: parameters and inputs checked first, MLflow errors typed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

from mlpipe.errors import BadInput
from mlpipe.models import ModelPlugin
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.spec import REQUIRED, TaskCall, TaskResult, TaskSpec


def accepted_params(spec: TaskSpec, plugin: ModelPlugin | None) -> dict[str, Any]:
    """Parameter name -> default (task's own, then the model plugin's)."""
    extra = dict(spec.plugin_params(plugin)) if spec.plugin_params and plugin else {}
    return {**extra, **spec.params}


def check_params(
    spec: TaskSpec, params: Mapping[str, Any], plugin: ModelPlugin | None
) -> list[str]:
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


def check_inputs(
    spec: TaskSpec, slots: Mapping[str, Any], params: Mapping[str, Any] | None = None
) -> list[str]:
    """Problems with the input slots given to ``spec`` (unknown or missing), as messages.

    A required slot may be left out when the parameter standing in for it
    (``spec.input_params``) is among ``params``.
    """
    known = ", ".join(spec.inputs) or "none"
    problems = [f"unknown input {s!r}; known: {known}" for s in slots if s not in spec.inputs]
    for slot, required in spec.inputs.items():
        instead = spec.input_params.get(slot)
        if not required or slot in slots or (instead and (params or {}).get(instead)):
            continue
        problems.append(
            f"needs input {slot!r}" + (f" (or parameter {instead!r})" if instead else "")
        )
    return problems


class RunOptions(TypedDict, total=False):
    ctx: TaskContext | None  # default: from the config, MLflow set up
    tags: Mapping[str, str] | None  # extra tags of the task's MLflow run
    experiment: str | None  # default: [pipeline] experiment


def run_spec(
    spec: TaskSpec,
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    **options: Unpack[RunOptions],
) -> TaskResult:
    """Run the task of ``spec`` in this process.

    An MLflow failure that the task does not handle itself is raised as
    :class:`~mlpipe.tasks.mlflow_errors.MlflowFailed` (exit code 1).
    """
    from mlpipe.tasks.mlflow_errors import as_mlpipe_errors

    ctx = options.get("ctx") or TaskContext.from_config()
    inputs, params = dict(inputs or {}), dict(params or {})
    problems = check_params(spec, params, ctx.plugin)
    problems += [f"task {spec.name} {p}" for p in check_inputs(spec, inputs, params)]
    if problems:
        raise BadInput("; ".join(problems))
    with as_mlpipe_errors(f"task {spec.name}"):
        tags = dict(options.get("tags") or {})
        return spec.run(TaskCall(ctx, inputs, params, tags, options.get("experiment")))
