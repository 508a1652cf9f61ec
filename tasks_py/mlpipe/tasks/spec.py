"""Task specifications: what each task takes, gives, accepts on the command line.

A task module defines one :class:`TaskSpec` (``SPEC``) and
:mod:`mlpipe.tasks.registry` lists them. The pipeline layer reads everything
task-specific from the spec (which inputs default to a registered model, which
parameters name local files), never from the task's name.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mlpipe.models import ModelPlugin
    from mlpipe.tasks.context import TaskContext


class _Required:
    """The default of a parameter that must be given."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()

Inputs = dict[str, Any]
Params = dict[str, Any]


@dataclass(frozen=True)
class TaskResult:
    """What a task produced: its MLflow run and its named outputs (JSON-able)."""

    task: str
    run_id: str
    outputs: dict[str, Any]
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskCall:
    """One invocation of a task: context, checked inputs and parameters, run tags."""

    ctx: TaskContext
    inputs: Mapping[str, Any]
    params: Mapping[str, Any]
    tags: Mapping[str, str] = field(default_factory=dict)
    experiment: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One task type.

    ``inputs`` maps each input slot to whether it is required; ``params`` maps
    each parameter to its default (:data:`REQUIRED` if none);
    ``plugin_params`` gives the model plugin's further accepted parameters.
    ``add_arguments``/``from_args`` are its command line (``from_args`` turns
    parsed arguments into ``(inputs, params)``); ``run`` does the work.

    ``default_model``: without a ``model`` input or parameter the task uses
    ``models:/<[model] name>@<[model] alias>``, resolved when it starts (so the
    version that alias points to is part of what the task depends on).
    ``local_sources``: parameter ``sources`` names local files, relative to
    ``base_dir`` (a pipeline sets it to the pipeline file's directory); their
    bytes are part of what the task depends on.
    ``input_params``: a required input slot that a parameter may stand in for
    (``{"data": "data_prefixes"}``: either is enough).
    ``ngas_params``: parameters naming NGAS ids or prefixes ending ``/`` that the
    task lists when it starts; the files there now (ids and checksums) are part
    of what the task depends on.
    """

    name: str
    run: Callable[[TaskCall], TaskResult]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    from_args: Callable[[argparse.Namespace, TaskContext], tuple[Inputs, Params]]
    inputs: Mapping[str, bool]
    outputs: tuple[str, ...]
    params: Mapping[str, Any]
    plugin_params: Callable[[ModelPlugin], Mapping[str, Any]] | None = None
    default_model: bool = False
    local_sources: bool = False
    input_params: Mapping[str, str] = field(default_factory=dict)
    ngas_params: tuple[str, ...] = ()

    @property
    def doc(self) -> str:
        """The docstring of the task's module (``run``'s), the CLI's description."""
        module = sys.modules.get(self.run.__module__)
        return (module.__doc__ if module else None) or ""

    @property
    def summary(self) -> str:
        """The first line of ``doc`` without the task name (the CLI's help)."""
        return self.doc.splitlines()[0].split(": ", 1)[-1] if self.doc else self.name
