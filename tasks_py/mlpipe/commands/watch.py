"""``mlpipe watch ftp [--once]``: start the inference pipeline for each new file on FTP(S).

Settings in ``[watch]`` (``MLPIPE_WATCH_<KEY>``; docs/watch.md). ``--once``
polls once (for tests and cron): exit 0 when nothing failed, 1 when something
is retried next time, 2 bad input. Without it the watcher polls every
``poll_interval`` seconds until SIGTERM or SIGINT, which stop it between files.
"""

from __future__ import annotations

import argparse
import dataclasses

from mlpipe.errors import EXIT_FAILED, EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("watch", help="start pipelines for new files on a server")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    p = sources.add_parser("ftp", help="poll the [watch] FTP/FTPS server and directory")
    p.add_argument("--once", action="store_true", help="one poll, then exit (0 = no errors)")
    p.add_argument("--name", help="this watcher's name (default [watch] name): its state file")
    p.set_defaults(func=_ftp)


def _ftp(args: argparse.Namespace) -> int:
    from mlpipe.config import load_config
    from mlpipe.tasks.context import TaskContext
    from mlpipe.watch.watcher import Watcher

    config = load_config()
    cfg = config.watch if not args.name else dataclasses.replace(config.watch, name=args.name)
    ctx = TaskContext(config)
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
