"""``mlpipe model fetch NAME@ALIAS|NAME/VERSION [--dest DIR]``: a registered model's files
through the local read cache (docs/cache.md)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("model", help="registered models: fetch a version's files")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser(
        "fetch",
        help="a model version's files, through the read cache",
        description=(
            "Fetch a registered model's files into the read cache ([cache] dir) and print "
            "where they are, or copy them to --dest. A version is downloaded once, then read "
            "from the cache with no request; an alias is asked of MLflow in good mode and "
            "taken as last resolved in bad/offline mode (with a warning)."
        ),
    )
    p.add_argument("model", help="NAME@ALIAS, NAME/VERSION or models:/... (NAME: [model] alias)")
    p.add_argument("--dest", help="copy the files into this new (or empty) directory")
    p.add_argument("--json", action="store_true", help="print name, version, path as JSON")
    p.set_defaults(func=_fetch)


def _fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlpipe.tasks.context import TaskContext

    ctx = TaskContext.from_config()
    alias = ctx.config.model.alias
    if args.dest:  # the cached version is pinned while it is copied
        cached = ctx.models.copy_to(args.model, Path(args.dest), alias)
    else:
        cached = ctx.models.get(args.model, alias)
    path = cached.path
    if args.json:
        print(
            json.dumps(
                {
                    "name": cached.name,
                    "version": cached.version,
                    "run_id": cached.run_id,
                    "path": str(path),
                    "downloaded": cached.downloaded,
                }
            )
        )
        return 0
    where = "downloaded into the cache" if cached.downloaded else "from the cache"
    copied = f", copied to {path}" if args.dest else " (read-only: it belongs to the cache)"
    print(f"{cached.uri} ({where}){copied}")
    print(path)
    return 0
