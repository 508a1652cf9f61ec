"""``retrain``: a registered model (version or alias) + new preprocessed data -> a new version.

The parent is resolved at run time (in ``bad``/``offline`` cache mode an alias as
last resolved) and its files read through the read cache; the new version's run and
version tags
record the parent version (``mlpipe.parent_version``) and the data ids used.
Both parent and child are evaluated on the same held-out rows of the new data
(``parent_<metric>`` next to ``<metric>``).

The data: the ``data`` input (a file set) and/or ``data_prefixes`` (NGAS ids or
prefixes ending ``/``, listed when the task starts; a pipeline's skip key
includes their current files). With ``new_only`` only the files the parent's
lineage (:mod:`mlpipe.tasks.lineage`) did not use are taken; when there are
none the task registers nothing, records a run tagged ``mlpipe.outcome`` =
``nothing new``, outputs ``model: null`` and succeeds (``promote`` given a null
model promotes nothing). A lineage or listing that cannot be read is an error.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlpipe.errors import BadInput
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.fitting import Metrics, fit_and_register, own_params
from mlpipe.tasks.params import add_param_option, data_and_model, parse_kv
from mlpipe.tasks.spec import Inputs, Params, TaskCall, TaskResult, TaskSpec

if TYPE_CHECKING:
    import pandas as pd

NAME = "retrain"
OWN_PARAMS = {"model": "", "test_fraction": 0.2, "data_prefixes": [], "new_only": False}
TAG_OUTCOME = "mlpipe.outcome"
NOTHING_NEW = "nothing new"


def _specs(value: Any) -> list[str]:
    """``data_prefixes`` as a list of NGAS ids / prefixes."""
    items = [value] if isinstance(value, str) else list(value or [])
    if not all(isinstance(i, str) and i for i in items):
        raise BadInput(f"retrain: data_prefixes {value!r}: expected NGAS ids or prefixes ending /")
    return items


def _data(call: TaskCall) -> list[dict[str, Any]]:
    """The ``data`` input and the files of ``data_prefixes`` now (each id and version once)."""
    from mlpipe.tasks.filesets import require, resolve

    given = call.inputs.get("data")
    specs = _specs(call.params.get("data_prefixes"))
    if not given and not specs:
        raise BadInput("retrain: give the data: input data (a file set) or data_prefixes")
    files = list(require(given, "data") if given else []) + resolve(
        call.ctx.ngas, specs, "retrain data_prefixes"
    )
    return list({(f["id"], f.get("version")): f for f in files}.values())


def _nothing_new(call: TaskCall, asked: str, parent: Any, total: int) -> TaskResult:
    """The outcome when the parent's lineage already used every file: a run, no version."""
    import mlflow

    from mlpipe.tasks.runs import record_outputs, task_run

    summary = (
        f"nothing new since {parent.name} version {parent.version}: its lineage used all "
        f"{total} file(s); no version registered"
    )
    with task_run(call, NAME, {**call.params, "model": asked}) as r:
        mlflow.set_tags(
            {
                "mlpipe.parent_model": parent.name,
                "mlpipe.parent_version": str(parent.version),
                "mlpipe.parent_requested": asked,
                "mlpipe.model_name": parent.name,
                TAG_OUTCOME: NOTHING_NEW,
                "mlpipe.selection": summary,
            }
        )
        mlflow.log_metrics({"files_given": total, "files_new": 0})
        outputs: dict[str, Any] = {"model": None}
        record_outputs(outputs)
    return TaskResult(NAME, r.info.run_id, outputs, summary, {"outcome": NOTHING_NEW})


def run(call: TaskCall) -> TaskResult:
    import mlflow

    from mlpipe.tasks import lineage, modelref

    config = call.ctx.config.model
    asked = modelref.model_ref(config, call.inputs, call.params)
    client = mlflow.MlflowClient()
    parent = call.ctx.models.resolve(modelref.parse(asked, config.alias))
    plugin = call.ctx.plugin
    files = _data(call)
    selection: dict[str, str] = {}
    if call.params.get("new_only"):
        what = f"retrain new_only: the data of {parent.name} version {parent.version}"
        used = lineage.of_version(client, parent.name, str(parent.version), what, call.ctx.models)
        new = used.unseen(files)
        if not new:
            return _nothing_new(call, asked, parent, len(files))
        selection = {
            "mlpipe.selection": (
                f"new since version {parent.version}: {len(new)} of {len(files)} file(s) "
                f"(lineage: {', '.join(used.versions)})"
            )
        }
        files = new
    call = replace(call, inputs={**call.inputs, "data": files})
    parent_files = call.ctx.models.get(parent)  # before the run: a missing version starts none

    def fit(rows: pd.DataFrame, heldout: pd.DataFrame) -> tuple[Any, Metrics]:
        model = plugin.load_model(str(parent_files.path))
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
            **selection,
        },
        lineage={"parent": parent.uri},
        version_tags={"mlpipe.parent_version": str(parent.version)},
    )
    shown = ", ".join(
        f"{k}={v:.4g} (parent {done.side_metrics[f'parent_{k}']:.4g})"
        for k, v in done.metrics.items()
    )
    summary = f"{parent.name} version {done.version} from version {parent.version}: {shown}"
    if selection:
        summary += f"; {selection['mlpipe.selection']}"
    return TaskResult(NAME, done.run_id, done.outputs, summary, dict(done.metrics))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="new preprocessed NGAS ids or prefixes ending /")
    parser.add_argument(
        "--model", help="parent: models:/NAME/VERSION or models:/NAME@ALIAS (default: production)"
    )
    parser.add_argument("--test-fraction", type=float, help="held-out share (default 0.2)")
    parser.add_argument(
        "--new-only",
        action="store_true",
        help="only the files the parent's lineage did not use (none: nothing registered, exit 0)",
    )
    add_param_option(parser, "continue-training parameter, e.g. -p epochs=50")


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[Inputs, Params]:
    params = parse_kv(args.param)
    if args.test_fraction is not None:
        params["test_fraction"] = args.test_fraction
    if args.new_only:
        params["new_only"] = True
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
    input_params={"data": "data_prefixes"},
    ngas_params=("data_prefixes",),
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(SPEC))
