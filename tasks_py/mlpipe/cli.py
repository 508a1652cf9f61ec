"""The one mlpipe command line: ``mlpipe <subcommand> ...``.

Each subcommand lives in its own module under :mod:`mlpipe.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with
the parsed arguments, returning an exit code). Exit codes: 0 ok, 1 failure,
2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from mlpipe import __version__
from mlpipe.errors import BadInput, MlpipeError

# Modules under mlpipe.commands, in the order their subcommands are listed.
COMMAND_MODULES: tuple[str, ...] = ("config", "ngas", "cache", "tasks", "pipeline")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlpipe", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mlpipe {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"mlpipe.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose > 1
        else logging.INFO
        if args.verbose
        else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BadInput as exc:
        print(f"mlpipe {args.command}: {exc}", file=sys.stderr)
        return 2
    except MlpipeError as exc:
        print(f"mlpipe {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlpipe {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
