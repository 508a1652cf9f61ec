"""``retrain``: a registered model (version or alias) + new preprocessed data -> a new version.

The parent is resolved at run time; the new version's run and version tags
record the parent version (``mlpipe.parent_version``) and the data ids used.
Both parent and child are evaluated on the same held-out rows of the new data
(``parent_<metric>`` next to ``<metric>``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.fitting import Metrics, fit_and_register, own_params
from mlpipe.tasks.params import add_param_option, data_and_model, parse_kv
from mlpipe.tasks.spec import Inputs, Params, TaskCall, TaskResult, TaskSpec

if TYPE_CHECKING:
    import pandas as pd

NAME = "retrain"
OWN_PARAMS = {"model": "", "test_fraction": 0.2}


def run(call: TaskCall) -> TaskResult:
    import mlflow

    from mlpipe.tasks import modelref

    config = call.ctx.config.model
    asked = modelref.model_ref(config, call.inputs, call.params)
    parent = modelref.resolve(mlflow.MlflowClient(), modelref.parse(asked, config.alias))
    plugin = call.ctx.plugin

    def fit(rows: pd.DataFrame, heldout: pd.DataFrame) -> tuple[Any, Metrics]:
        model = plugin.load_model(parent.uri)
        before = plugin.evaluate(model, heldout)  # continue_training may update it in place
        model = plugin.continue_training(model, rows, own_params(call.params, OWN_PARAMS))
        return model, {f"parent_{k}": v for k, v in before.items()}

    done = fit_and_register(
        call,
        NAME,
        parent.name,
        fit,
        logged_params={**call.params, "model": asked},
        tags={
            "mlpipe.parent_model": parent.name,
            "mlpipe.parent_version": str(parent.version),
            "mlpipe.parent_requested": asked,
        },
        lineage={"parent": parent.uri},
        version_tags={"mlpipe.parent_version": str(parent.version)},
    )
    shown = ", ".join(
        f"{k}={v:.4g} (parent {done.side_metrics[f'parent_{k}']:.4g})"
        for k, v in done.metrics.items()
    )
    summary = f"{parent.name} version {done.version} from version {parent.version}: {shown}"
    return TaskResult(NAME, done.run_id, done.outputs, summary, dict(done.metrics))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="new preprocessed NGAS ids or prefixes ending /")
    parser.add_argument(
        "--model", help="parent: models:/NAME/VERSION or models:/NAME@ALIAS (default: production)"
    )
    parser.add_argument("--test-fraction", type=float, help="held-out share (default 0.2)")
    add_param_option(parser, "continue-training parameter, e.g. -p epochs=50")


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[Inputs, Params]:
    params = parse_kv(args.param)
    if args.test_fraction is not None:
        params["test_fraction"] = args.test_fraction
    return data_and_model(ctx.ngas, args, "retrain data"), params


SPEC = TaskSpec(
    NAME,
    run,
    add_arguments,
    from_args,
    inputs={"data": True, "model": False},
    outputs=("model",),
    params=OWN_PARAMS,
    plugin_params=lambda plugin: plugin.continue_params,
    default_model=True,
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(SPEC))
