"""Task specifications: named inputs, outputs and parameters of each task."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

REQUIRED: Any = object()


@dataclass(frozen=True)
class TaskResult:
    """What a task produced: its MLflow run and its named outputs (JSON-able)."""

    task: str
    run_id: str
    outputs: dict[str, Any]
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """One task type.

    ``inputs`` maps each input slot to whether it is required; ``params`` maps
    each parameter to its default (:data:`REQUIRED` if none). ``plugin_params``
    names the model plugin attribute listing further accepted parameters.
    ``func(ctx, inputs, params, tags, experiment)`` does the work.
    """

    name: str
    func: Callable[..., TaskResult]
    inputs: Mapping[str, bool]
    outputs: tuple[str, ...]
    params: Mapping[str, Any]
    plugin_params: str | None = None
    doc: str = ""
