"""``infer``: preprocessed files on NGAS + a model -> predictions on NGAS + an inference run.

The model defaults to ``models:/<[model] name>@<[model] alias>`` and the alias
is resolved when the task starts, so a newly promoted version is used without
any configuration change (in ``bad``/``offline`` cache mode: the alias as last
resolved, with a warning). The version's files are read through the read cache
(:mod:`mlpipe.tasks.model_cache`). The run records the version actually used.
Predictions of input ``X.csv`` are stored as
``<prefix>/<model>-v<version>/X.csv``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mlpipe.tasks import filesets
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.params import data_and_model
from mlpipe.tasks.spec import Inputs, Params, TaskCall, TaskResult, TaskSpec

NAME = "infer"
OWN_PARAMS = {"model": "", "prefix": ""}


def run(call: TaskCall) -> TaskResult:
    import mlflow
    import pandas as pd

    from mlpipe.tasks import modelref
    from mlpipe.tasks.runs import record_outputs, task_run

    ctx, params = call.ctx, call.params
    asked = modelref.model_ref(ctx.config.model, call.inputs, params)
    ref = ctx.models.resolve(modelref.parse(asked, ctx.config.model.alias))
    model, _ = ctx.load_model(ref.uri)  # before the run: a missing version starts none
    data = filesets.require(call.inputs.get("data"), "data")
    prefix = (params.get("prefix") or f"{ctx.data_prefix}/predictions").strip("/")
    out_prefix = f"{prefix}/{ref.name}-v{ref.version}"
    plugin = ctx.plugin
    with (
        task_run(call, NAME, {**params, "model": asked}) as r,
        tempfile.TemporaryDirectory(prefix="mlpipe-infer-") as tmp,
    ):
        mlflow.set_tags(
            {
                "mlpipe.model_name": ref.name,
                "mlpipe.model_version": str(ref.version),
                "mlpipe.model_requested": asked,
            }
        )
        mlflow.log_dict({"data": data, "model": ref.uri}, "data.json")
        produced: filesets.FileSet = []
        rows = 0
        for item in data:
            frame = pd.read_csv(filesets.fetch(ctx.cache, item))
            pred = plugin.predict(model, frame)
            out = Path(tmp) / (Path(filesets.basename(item["id"])).stem + ".csv")
            pred.to_csv(out, index=False)
            produced.append(filesets.store(ctx.ngas, out, f"{out_prefix}/{out.name}"))
            rows += len(pred)
        mlflow.log_metrics({"files": len(produced), "rows": rows})
        outputs = {"predictions": produced}
        record_outputs(outputs)
    summary = f"{rows} prediction(s) by {ref.name} version {ref.version} under {out_prefix}/"
    return TaskResult(NAME, r.info.run_id, outputs, summary, {"model_version": ref.version})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="preprocessed NGAS ids or prefixes ending in /")
    parser.add_argument("--model", help="default: models:/<[model] name>@<[model] alias>")
    parser.add_argument("--prefix", help="output id prefix (default: data_prefix/predictions)")


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[Inputs, Params]:
    params = {"prefix": args.prefix} if args.prefix else {}
    return data_and_model(ctx.ngas, args, "infer data"), params


SPEC = TaskSpec(
    NAME,
    run,
    add_arguments,
    from_args,
    inputs={"data": True, "model": False},
    outputs=("predictions",),
    params=OWN_PARAMS,
    default_model=True,
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(SPEC))
