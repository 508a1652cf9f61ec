"""``train``: preprocessed files on NGAS -> a new model version in the MLflow registry.

The latest ``test_fraction`` of rows is held out; the run records the
parameters, held-out metrics (and training-set metrics prefixed ``train_``),
the data ids used and the held-out rows (``eval/heldout.csv``, used by the
promotion gate).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.params import add_param_option, parse_kv
from mlpipe.tasks.spec import TaskResult, TaskSpec

NAME = "train"
OWN_PARAMS = {"model_name": "", "test_fraction": 0.2}


def plugin_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in OWN_PARAMS}


def run(
    ctx: TaskContext,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
) -> TaskResult:
    import mlflow

    from mlpipe.tasks import frames
    from mlpipe.tasks.runs import record_outputs, task_run

    name = params.get("model_name") or ctx.config.model.name
    data = inputs.get("data")
    table = frames.load(ctx, data, "data")
    plugin = ctx.plugin
    train_rows, heldout = plugin.split(table, float(params.get("test_fraction", 0.2)))
    with task_run(ctx, NAME, {**params, "model_name": name}, tags, experiment) as r:
        mlflow.log_dict({"data": data}, "data.json")
        mlflow.set_tags({"mlpipe.data_ids": frames.ids_text(data), "mlpipe.model_name": name})
        model = plugin.train(train_rows, plugin_params(params))
        metrics = plugin.evaluate(model, heldout)
        mlflow.log_metrics(metrics)
        mlflow.log_metrics({f"train_{k}": v for k, v in plugin.evaluate(model, train_rows).items()})
        mlflow.log_metrics({"rows_train": len(train_rows), "rows_heldout": len(heldout)})
        frames.log_heldout(heldout)
        version = plugin.log_model(model, train_rows, name)
        client = mlflow.MlflowClient()
        client.set_model_version_tag(name, version, "mlpipe.data_ids", frames.ids_text(data))
        client.set_model_version_tag(name, version, "mlpipe.run_id", r.info.run_id)
        mlflow.set_tag("mlpipe.model_version", version)
        outputs = {"model": f"models:/{name}/{version}"}
        record_outputs(outputs)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
    return TaskResult(NAME, r.info.run_id, outputs, f"{name} version {version}: {shown}", metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="preprocessed NGAS ids, or prefixes ending in /")
    parser.add_argument("--name", help="registered model name (default: [model] name)")
    parser.add_argument("--test-fraction", type=float, help="held-out share (default 0.2)")
    add_param_option(parser, "training parameter of the model plugin, e.g. -p alpha=0.001")


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[dict, dict]:
    from mlpipe.tasks.filesets import resolve

    params = parse_kv(args.param)
    if args.name:
        params["model_name"] = args.name
    if args.test_fraction is not None:
        params["test_fraction"] = args.test_fraction
    return {"data": resolve(ctx.ngas, args.data, "train data")}, params


SPEC = TaskSpec(
    NAME,
    run,
    inputs={"data": True},
    outputs=("model",),
    params=OWN_PARAMS,
    plugin_params="train_params",
    doc=__doc__ or "",
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(NAME, sys.argv[1:]))
