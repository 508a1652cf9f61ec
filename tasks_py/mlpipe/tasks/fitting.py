"""What train and retrain share: split the data, fit inside a run, evaluate on the
held-out rows, log the model as a new registered version with its lineage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlpipe.tasks.spec import TaskCall

if TYPE_CHECKING:
    import pandas as pd

Metrics = dict[str, float]
# (training rows, held-out rows) -> (fitted model, metrics logged next to the model's own)
Fit = Callable[["pd.DataFrame", "pd.DataFrame"], tuple[Any, Metrics]]


@dataclass(frozen=True)
class Registered:
    """The new model version and the run that made it."""

    run_id: str
    name: str
    version: str
    metrics: Metrics  # on the held-out rows
    side_metrics: Metrics  # what ``fit`` returned (train_*, parent_*)
    outputs: dict[str, Any]


def fit_and_register(
    call: TaskCall,
    task: str,
    name: str,
    fit: Fit,
    *,
    logged_params: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    lineage: Mapping[str, Any] | None = None,
    version_tags: Mapping[str, str] | None = None,
) -> Registered:
    """Fit on input ``data`` (minus ``test_fraction`` held out) and register version N of ``name``.

    ``tags``/``version_tags`` are set on the run/the new version besides the
    data ids (and the run id); ``lineage`` goes into ``data.json`` besides the data.
    """
    import mlflow

    from mlpipe.tasks import frames
    from mlpipe.tasks.filesets import require
    from mlpipe.tasks.runs import record_outputs, task_run

    files = require(call.inputs.get("data"), "data")
    table = frames.load(call.ctx, files, "data")
    plugin = call.ctx.plugin
    train_rows, heldout = plugin.split(table, float(call.params.get("test_fraction", 0.2)))
    data_ids = frames.ids_text(files)
    with task_run(call, task, logged_params) as r:
        mlflow.set_tags({**(tags or {}), "mlpipe.data_ids": data_ids, "mlpipe.model_name": name})
        mlflow.log_dict({"data": files, **(lineage or {})}, "data.json")
        model, side = fit(train_rows, heldout)
        metrics = plugin.evaluate(model, heldout)
        mlflow.log_metrics(metrics)
        mlflow.log_metrics(side)
        mlflow.log_metrics({"rows_train": len(train_rows), "rows_heldout": len(heldout)})
        frames.log_heldout(heldout)
        version = plugin.log_model(model, train_rows, name)
        client = mlflow.MlflowClient()
        all_version_tags = {
            **(version_tags or {}),
            "mlpipe.data_ids": data_ids,
            "mlpipe.run_id": r.info.run_id,
        }
        for key, value in all_version_tags.items():
            client.set_model_version_tag(name, version, key, value)
        mlflow.set_tag("mlpipe.model_version", version)
        outputs: dict[str, Any] = {"model": f"models:/{name}/{version}"}
        record_outputs(outputs)
    return Registered(r.info.run_id, name, version, metrics, side, outputs)


def own_params(params: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters meant for the model plugin (all but the task's ``own``)."""
    return {k: v for k, v in params.items() if k not in own}
