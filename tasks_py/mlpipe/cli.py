"""The one mlpipe command line: ``mlpipe <subcommand> ...``.

Each subcommand lives in its own module under :mod:`mlpipe.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with
the parsed arguments, returning an exit code). Exit codes (one mapping,
:func:`mlpipe.errors.run_guarded`): 0 ok, 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from mlpipe import __version__
from mlpipe.commands import (
    cache,
    compare,
    config,
    model,
    monitor,
    ngas,
    pipeline,
    serve,
    tasks,
    watch,
    web,
)
from mlpipe.errors import EXIT_BAD_INPUT, run_guarded

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# In the order their subcommands are listed.
COMMANDS: tuple[Register, ...] = (
    config.register,
    ngas.register,
    cache.register,
    tasks.register,
    pipeline.register,
    compare.register,
    web.register,
    watch.register,
    serve.register,
    model.register,
    monitor.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlpipe", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mlpipe {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    return run_guarded(f"mlpipe {args.command}", lambda: int(func(args) or 0))


if __name__ == "__main__":
    sys.exit(main())
