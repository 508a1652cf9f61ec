"""``train``: preprocessed files on NGAS -> a new model version in the MLflow registry.

The latest ``test_fraction`` of rows is held out; the run records the
parameters, held-out metrics (and training-set metrics prefixed ``train_``),
the data ids used and the held-out rows (``eval/heldout.csv``, used by the
promotion gate).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.filesets import resolve
from mlpipe.tasks.fitting import Metrics, fit_and_register, own_params
from mlpipe.tasks.params import add_param_option, parse_kv
from mlpipe.tasks.spec import Inputs, Params, TaskCall, TaskResult, TaskSpec

if TYPE_CHECKING:
    import pandas as pd

NAME = "train"
OWN_PARAMS = {"model_name": "", "test_fraction": 0.2}


def run(call: TaskCall) -> TaskResult:
    plugin = call.ctx.plugin
    name = str(call.params.get("model_name") or call.ctx.config.model.name)

    def fit(rows: pd.DataFrame, heldout: pd.DataFrame) -> tuple[Any, Metrics]:
        model = plugin.train(rows, own_params(call.params, OWN_PARAMS))
        return model, {f"train_{k}": v for k, v in plugin.evaluate(model, rows).items()}

    done = fit_and_register(
        call, NAME, name, fit, logged_params={**call.params, "model_name": name}
    )
    shown = ", ".join(f"{k}={v:.4g}" for k, v in done.metrics.items())
    summary = f"{name} version {done.version}: {shown}"
    return TaskResult(NAME, done.run_id, done.outputs, summary, dict(done.metrics))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="preprocessed NGAS ids, or prefixes ending in /")
    parser.add_argument("--name", help="registered model name (default: [model] name)")
    parser.add_argument("--test-fraction", type=float, help="held-out share (default 0.2)")
    add_param_option(parser, "training parameter of the model plugin, e.g. -p alpha=0.001")


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[Inputs, Params]:
    params = parse_kv(args.param)
    if args.name:
        params["model_name"] = args.name
    if args.test_fraction is not None:
        params["test_fraction"] = args.test_fraction
    return {"data": resolve(ctx.ngas, args.data, "train data")}, params


SPEC = TaskSpec(
    NAME,
    run,
    add_arguments,
    from_args,
    inputs={"data": True},
    outputs=("model",),
    params=OWN_PARAMS,
    plugin_params=lambda plugin: plugin.train_params,
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(SPEC))
