"""``preprocess``: raw files on NGAS -> preprocessed CSVs on NGAS + a run with the settings.

Raw files are read through the local read cache. A file the model plugin cannot
preprocess is copied to the quarantine prefix (the original stays where it is)
and listed in the run; the rest of the batch is processed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mlpipe.errors import BadInput
from mlpipe.models import BadRawFile
from mlpipe.tasks import filesets
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.params import add_destination_options, add_param_option, parse_kv
from mlpipe.tasks.spec import Inputs, Params, TaskCall, TaskResult, TaskSpec

NAME = "preprocess"
OWN_PARAMS = {"prefix": "", "quarantine": ""}


def run(call: TaskCall) -> TaskResult:
    import mlflow

    from mlpipe.tasks.runs import record_outputs, task_run

    ctx, params = call.ctx, call.params
    raw = filesets.require(call.inputs.get("raw"), "raw")
    dest = filesets.Destinations.of(params, ctx.data_prefix, "preprocessed")
    settings = {k: v for k, v in params.items() if k not in OWN_PARAMS}
    with (
        task_run(call, NAME) as r,
        tempfile.TemporaryDirectory(prefix="mlpipe-pre-") as tmp,
    ):
        mlflow.log_dict({"raw": raw, "settings": settings}, "inputs.json")
        produced: filesets.FileSet = []
        quarantined: filesets.FileSet = []
        for item in raw:
            local = filesets.fetch(ctx.cache, item)
            try:
                frame = ctx.plugin.preprocess(local, settings)
                if frame.empty:
                    raise BadRawFile(f"{item['id']}: no usable rows after preprocessing")
            except BadRawFile as exc:
                copy = Path(tmp) / filesets.basename(item["id"])
                copy.write_bytes(local.read_bytes())
                moved = filesets.store(ctx.ngas, copy, f"{dest.quarantine}/{copy.name}")
                quarantined.append({"raw": item["id"], **moved, "reason": str(exc)})
                continue
            out = Path(tmp) / (Path(filesets.basename(item["id"])).stem + ".csv")
            frame.to_csv(out, index=False)
            produced.append(filesets.store(ctx.ngas, out, f"{dest.prefix}/{out.name}"))
        mlflow.log_dict({"produced": produced, "quarantined": quarantined}, "preprocessed.json")
        mlflow.log_metrics({"files": len(produced), "quarantined": len(quarantined)})
        if not produced:
            raise BadInput(
                f"preprocess: none of the {len(raw)} raw file(s) could be preprocessed; all were "
                f"copied to {dest.quarantine}/ (see run {r.info.run_id}); check the raw data"
            )
        outputs = {"preprocessed": produced}
        record_outputs(outputs)
    stored = f"{len(produced)} preprocessed file(s)"
    return dest.result(NAME, r.info.run_id, outputs, stored, quarantined)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("raw", nargs="+", help="raw NGAS file ids, or prefixes ending in /")
    add_destination_options(parser, "[pipeline] data_prefix/preprocessed")
    add_param_option(parser, "preprocess setting of the model plugin, e.g. -p lags=2")


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[Inputs, Params]:
    params = parse_kv(args.param)
    params.update({k: v for k in ("prefix", "quarantine") if (v := getattr(args, k))})
    return {"raw": filesets.resolve(ctx.ngas, args.raw, "preprocess raw")}, params


SPEC = TaskSpec(
    NAME,
    run,
    add_arguments,
    from_args,
    inputs={"raw": True},
    outputs=("preprocessed",),
    params=OWN_PARAMS,
    plugin_params=lambda plugin: plugin.preprocess_settings,
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(SPEC))
