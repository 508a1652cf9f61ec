"""``mlpipe watch ftp [--once]``: start the inference pipeline for each new file on FTP(S).

Settings in ``[watch]`` (``MLPIPE_WATCH_<KEY>``; docs/watch.md). ``--once``
polls once (for tests and cron): exit 0 when nothing failed, 1 when something
is retried next time, 2 bad input. Without it the watcher polls every
``poll_interval`` seconds until SIGTERM or SIGINT, which stop it between files.
``--check`` validates the settings and the pipeline only (exit 0 or 2).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from mlpipe.errors import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from mlpipe.config import WatchConfig
    from mlpipe.tasks.context import TaskContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("watch", help="start pipelines for new files on a server")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    p = sources.add_parser("ftp", help="poll the [watch] FTP/FTPS server and directory")
    p.add_argument("--once", action="store_true", help="one poll, then exit (0 = no errors)")
    p.add_argument("--name", help="this watcher's name (default [watch] name): its state file")
    p.add_argument(
        "--check",
        action="store_true",
        help="check the settings and the pipeline; contact nothing, change nothing",
    )
    p.set_defaults(func=_ftp)


def _ftp(args: argparse.Namespace) -> int:
    from mlpipe.config import load_config
    from mlpipe.tasks.context import TaskContext
    from mlpipe.watch.watcher import Watcher

    config = load_config()
    cfg = config.watch if not args.name else dataclasses.replace(config.watch, name=args.name)
    ctx = TaskContext(config)
    if args.check:
        return _check(ctx, cfg)
    ctx.setup_mlflow()
    watcher = Watcher(ctx, cfg)
    if not args.once:
        return watcher.run_forever()
    result = watcher.poll()
    watcher.log(
        f"poll: {result.listed} file(s) listed, {result.taken} taken, {len(result.done)} done, "
        f"{len(result.errors)} error(s)"
    )
    return EXIT_OK if result.ok else EXIT_FAILED


def _check(ctx: TaskContext, cfg: WatchConfig) -> int:
    from mlpipe.errors import BadInput
    from mlpipe.watch import submit
    from mlpipe.watch.ftp import FtpSource, tls_context

    if not cfg.host:
        raise BadInput("[watch] host: name the FTP server (MLPIPE_WATCH_HOST or [watch] host)")
    if not cfg.pipeline:
        raise BadInput("[watch] pipeline: name the pipeline.yaml (MLPIPE_WATCH_PIPELINE)")
    if cfg.tls:
        tls_context(cfg)
    pipeline = submit.check(cfg.pipeline, ctx, cfg.input, cfg.executor)
    where = FtpSource(cfg).where
    print(
        f"watch {cfg.name}: {where} ({cfg.pattern}) -> pipeline {pipeline.name} "
        f"({len(pipeline.steps)} steps) via {cfg.executor}: settings are valid"
    )
    return EXIT_OK
