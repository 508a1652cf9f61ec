"""``load-raw``: raw source files (paths, dirs, globs, URLs) -> NGAS + an MLflow run.

Each file is checked by the model plugin (``validate_raw``); good files are
archived as ``<prefix>/<name>``, bad ones as ``<quarantine>/<name>`` and listed
in the run. Files whose bytes are already the newest version of their id are
not archived again. ``[ngas] concurrency`` files (default 4) are checked and
stored at once, each thread with its own connection; the outputs keep the order
of the sources. The first file that cannot be stored stops the batch (files not
yet started are not sent; those stored stay, and a run again skips them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

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
            for kind, item in _store_all(ctx, files, dest, ctx.config.ngas.concurrency):
                (stored if kind == "stored" else quarantined).append(item)
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


def _store_all(
    ctx: TaskContext,
    files: Sequence[tuple[str, Path]],
    dest: filesets.Destinations,
    concurrency: int,
) -> list[tuple[str, dict[str, Any]]]:
    """Each file checked and stored (``("stored" | "quarantined", entry)``, in the order of
    ``files``), ``concurrency`` at a time, a client per thread."""
    local = threading.local()
    plugin, base = ctx.plugin, ctx.ngas  # made here, not by two threads at once
    threaded = concurrency > 1 and len(files) > 1

    def client() -> Any:
        if not threaded:
            return base
        if not hasattr(local, "client"):
            local.client = base.clone()
        return local.client

    def one(source: str, path: Path) -> tuple[str, dict[str, Any]]:
        try:
            plugin.validate_raw(path)
        except BadRawFile as exc:
            item = filesets.store(client(), path, f"{dest.quarantine}/{path.name}")
            return "quarantined", {**item, "source": source, "reason": str(exc)}
        item = filesets.store(client(), path, f"{dest.prefix}/{path.name}")
        return "stored", {**item, "source": source}

    progress = _files_bar(len(files))
    try:
        if not threaded:
            results = []
            for source, path in files:
                results.append(one(source, path))
                progress(1)
            return results
        with ThreadPoolExecutor(min(concurrency, len(files)), "load-raw") as pool:
            futures = [pool.submit(one, source, path) for source, path in files]
            for f in futures:
                f.add_done_callback(lambda _: progress(1))
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                for f in futures:
                    f.cancel()  # those not started yet; running ones finish
                raise failed[0].exception()  # type: ignore[misc]
            return [f.result() for f in futures]
    finally:
        progress(0)


def _files_bar(total: int) -> Callable[[int], None]:
    """A files bar on stderr (a TTY and 20 files or more); call with 0 to close it."""
    if not (sys.stderr.isatty() and total >= 20):
        return lambda n: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="load-raw", unit="file", file=sys.stderr)
    lock = threading.Lock()

    def step(n: int) -> None:
        with lock:
            if n:
                bar.update(n)
            else:
                bar.close()

    return step


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
