"""``load-raw``: raw source files (paths, dirs, globs, URLs) -> NGAS + an MLflow run.

Each file is checked by the model plugin (``validate_raw``); good files are
archived as ``<prefix>/<name>``, bad ones as ``<quarantine>/<name>`` and listed
in the run. Files whose bytes are already the newest version of their id are
not archived again.
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
from mlpipe.tasks.params import add_destination_options
from mlpipe.tasks.sources import expand
from mlpipe.tasks.spec import REQUIRED, Inputs, Params, TaskCall, TaskResult, TaskSpec

NAME = "load-raw"


def run(call: TaskCall) -> TaskResult:
    import mlflow

    from mlpipe.tasks.runs import record_outputs, task_run

    ctx, params = call.ctx, call.params
    sources = params["sources"]
    if isinstance(sources, str):
        sources = [sources]
    if not sources:
        raise BadInput("load-raw: no raw sources given; name files, directories, globs or URLs")
    dest = filesets.Destinations.of(params, ctx.data_prefix, "raw")
    base = Path(params.get("base_dir") or ".")
    with tempfile.TemporaryDirectory(prefix="mlpipe-raw-") as tmp:
        files = expand(sources, base, Path(tmp))
        names: dict[str, Path] = {}
        for _, path in files:
            other = names.setdefault(path.name, path)
            if other != path:
                raise BadInput(
                    f"load-raw: {other} and {path} would both be stored as "
                    f"{dest.prefix}/{path.name}; rename one or load them in separate batches"
                )
        with task_run(call, NAME, {**params, "sources": list(sources)}) as r:
            stored: filesets.FileSet = []
            quarantined: filesets.FileSet = []
            for source, path in files:
                try:
                    ctx.plugin.validate_raw(path)
                except BadRawFile as exc:
                    item = filesets.store(ctx.ngas, path, f"{dest.quarantine}/{path.name}")
                    quarantined.append({**item, "source": source, "reason": str(exc)})
                    continue
                item = filesets.store(ctx.ngas, path, f"{dest.prefix}/{path.name}")
                stored.append({**item, "source": source})
            mlflow.log_dict({"stored": stored, "quarantined": quarantined}, "raw_files.json")
            mlflow.log_metrics(
                {
                    "files": len(stored),
                    "quarantined": len(quarantined),
                    "bytes": sum(i["size"] for i in stored),
                }
            )
            if not stored:
                raise BadInput(
                    f"load-raw: all {len(quarantined)} raw file(s) are unusable and were "
                    f"quarantined under {dest.quarantine}/ (see run {r.info.run_id}); fix them"
                )
            keep = ("id", "version", "checksum", "size")
            outputs = {"raw": [{k: i[k] for k in keep} for i in stored]}
            record_outputs(outputs)
    return dest.result(
        NAME, r.info.run_id, outputs, f"{len(stored)} raw file(s) on NGAS", quarantined
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", help="raw files, directories, globs or URLs")
    add_destination_options(parser, "[pipeline] data_prefix/raw")


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[Inputs, Params]:
    params = {"sources": args.sources, "prefix": args.prefix, "quarantine": args.quarantine}
    return {}, {k: v for k, v in params.items() if v is not None}


SPEC = TaskSpec(
    NAME,
    run,
    add_arguments,
    from_args,
    inputs={},
    outputs=("raw",),
    params={"sources": REQUIRED, "prefix": "", "quarantine": "", "base_dir": ""},
    local_sources=True,
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(SPEC))
