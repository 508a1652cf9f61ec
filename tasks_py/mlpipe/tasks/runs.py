"""The MLflow run of a task: tags identifying it, outputs recorded as an artifact."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import mlflow

from mlpipe.tasks.spec import TaskCall

OUTPUTS_ARTIFACT = "mlpipe/outputs.json"
TAG_TASK = "mlpipe.task"


@contextlib.contextmanager
def task_run(
    call: TaskCall, task: str, params: Mapping[str, Any] | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Start the task's run (FAILED if the block raises), logging ``params`` (or the call's)."""
    params = call.params if params is None else params
    run_tags = {TAG_TASK: task, **call.tags}
    with mlflow.start_run(
        experiment_id=call.ctx.experiment_id(call.experiment), run_name=task, tags=run_tags
    ) as run:
        mlflow.log_params({k: _param_text(v) for k, v in params.items()})
        yield run


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 6000 else text[:5990] + "...(cut)"


def record_outputs(outputs: Mapping[str, Any]) -> None:
    """Store the outputs in the active run (read back to skip an unchanged task)."""
    mlflow.log_dict(dict(outputs), OUTPUTS_ARTIFACT)


def read_outputs(run_id: str) -> dict[str, Any]:
    return dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/{OUTPUTS_ARTIFACT}"))
