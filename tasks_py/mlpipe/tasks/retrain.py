"""``retrain``: a registered model (version or alias) + new preprocessed data -> a new version.

The parent is resolved at run time; the new version's run and version tags
record the parent version (``mlpipe.parent_version``) and the data ids used.
Both parent and child are evaluated on the same held-out rows of the new data
(``parent_<metric>`` next to ``<metric>``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.params import add_param_option, parse_kv
from mlpipe.tasks.spec import TaskResult, TaskSpec

NAME = "retrain"
OWN_PARAMS = {"model": "", "test_fraction": 0.2}


def model_ref(ctx: TaskContext, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The model asked for: input ``model``, else param ``model``, else ``name@alias``."""
    return str(
        inputs.get("model")
        or params.get("model")
        or f"models:/{ctx.config.model.name}@{ctx.config.model.alias}"
    )


def run(
    ctx: TaskContext,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
) -> TaskResult:
    import mlflow

    from mlpipe.tasks import frames, modelref
    from mlpipe.tasks.runs import record_outputs, task_run

    asked = model_ref(ctx, inputs, params)
    parent = modelref.resolve(mlflow.MlflowClient(), modelref.parse(asked, ctx.config.model.alias))
    data = inputs.get("data")
    table = frames.load(ctx, data, "data")
    plugin = ctx.plugin
    train_rows, heldout = plugin.split(table, float(params.get("test_fraction", 0.2)))
    own = {k: v for k, v in params.items() if k not in OWN_PARAMS}
    with task_run(ctx, NAME, {**params, "model": asked}, tags, experiment) as r:
        model = plugin.load_model(parent.uri)
        parent_metrics = plugin.evaluate(model, heldout)
        mlflow.set_tags(
            {
                "mlpipe.parent_model": parent.name,
                "mlpipe.parent_version": parent.version,
                "mlpipe.parent_requested": asked,
                "mlpipe.data_ids": frames.ids_text(data),
                "mlpipe.model_name": parent.name,
            }
        )
        mlflow.log_dict({"data": data, "parent": parent.uri}, "data.json")
        model = plugin.continue_training(model, train_rows, own)
        metrics = plugin.evaluate(model, heldout)
        mlflow.log_metrics(metrics)
        mlflow.log_metrics({f"parent_{k}": v for k, v in parent_metrics.items()})
        mlflow.log_metrics({"rows_train": len(train_rows), "rows_heldout": len(heldout)})
        frames.log_heldout(heldout)
        version = plugin.log_model(model, train_rows, parent.name)
        client = mlflow.MlflowClient()
        for key, value in {
            "mlpipe.parent_version": str(parent.version),
            "mlpipe.data_ids": frames.ids_text(data),
            "mlpipe.run_id": r.info.run_id,
        }.items():
            client.set_model_version_tag(parent.name, version, key, value)
        mlflow.set_tag("mlpipe.model_version", version)
        outputs = {"model": f"models:/{parent.name}/{version}"}
        record_outputs(outputs)
    shown = ", ".join(f"{k}={v:.4g} (parent {parent_metrics[k]:.4g})" for k, v in metrics.items())
    summary = f"{parent.name} version {version} from version {parent.version}: {shown}"
    return TaskResult(NAME, r.info.run_id, outputs, summary, metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="new preprocessed NGAS ids or prefixes ending /")
    parser.add_argument(
        "--model", help="parent: models:/NAME/VERSION or models:/NAME@ALIAS (default: production)"
    )
    parser.add_argument("--test-fraction", type=float, help="held-out share (default 0.2)")
    add_param_option(parser, "continue-training parameter, e.g. -p epochs=50")


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[dict, dict]:
    from mlpipe.tasks.filesets import resolve

    params = parse_kv(args.param)
    if args.test_fraction is not None:
        params["test_fraction"] = args.test_fraction
    inputs: dict[str, Any] = {"data": resolve(ctx.ngas, args.data, "retrain data")}
    if args.model:
        inputs["model"] = args.model
    return inputs, params


SPEC = TaskSpec(
    NAME,
    run,
    inputs={"data": True, "model": False},
    outputs=("model",),
    params=OWN_PARAMS,
    plugin_params="continue_params",
    doc=__doc__ or "",
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(NAME, sys.argv[1:]))
