"""``infer``: preprocessed files on NGAS + a model -> predictions on NGAS + an inference run.

The model defaults to ``models:/<[model] name>@<[model] alias>`` and the alias
is resolved when the task starts, so a newly promoted version is used without
any configuration change. The run records the version actually used.
Predictions of input ``X.csv`` are stored as
``<prefix>/<model>-v<version>/X.csv``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlpipe.tasks import filesets
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.retrain import model_ref
from mlpipe.tasks.spec import TaskResult, TaskSpec

NAME = "infer"
OWN_PARAMS = {"model": "", "prefix": ""}


def run(
    ctx: TaskContext,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
) -> TaskResult:
    import mlflow
    import pandas as pd

    from mlpipe.tasks import filesets, modelref
    from mlpipe.tasks.runs import record_outputs, task_run

    asked = model_ref(ctx, inputs, params)
    ref = modelref.resolve(mlflow.MlflowClient(), modelref.parse(asked, ctx.config.model.alias))
    data = filesets.require(inputs.get("data"), "data")
    prefix = (params.get("prefix") or f"{ctx.data_prefix}/predictions").strip("/")
    out_prefix = f"{prefix}/{ref.name}-v{ref.version}"
    plugin = ctx.plugin
    with (
        task_run(ctx, NAME, {**params, "model": asked}, tags, experiment) as r,
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
        model = plugin.load_model(ref.uri)
        produced, rows = [], 0
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


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[dict, dict]:
    inputs: dict[str, Any] = {"data": filesets.resolve(ctx.ngas, args.data, "infer data")}
    if args.model:
        inputs["model"] = args.model
    return inputs, ({"prefix": args.prefix} if args.prefix else {})


SPEC = TaskSpec(
    NAME,
    run,
    inputs={"data": True, "model": False},
    outputs=("predictions",),
    params=OWN_PARAMS,
    doc=__doc__ or "",
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(NAME, sys.argv[1:]))
