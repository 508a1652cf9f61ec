"""Command-line glue shared by ``mlpipe <task>`` and ``python -m mlpipe.tasks.<task>``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mlpipe.errors import BadInput, MlpipeError
from mlpipe.tasks import TASK_MODULES, get_spec, run_task


def add_task_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """Add the subcommand of task ``name`` (its own options + the common ones)."""
    spec = get_spec(name)
    parser = sub.add_parser(
        name, help=spec.doc.splitlines()[0].split(": ", 1)[-1], description=spec.doc
    )
    configure(parser, name)
    return parser


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    module = importlib.import_module(f"mlpipe.tasks.{TASK_MODULES[name]}")
    module.add_arguments(parser)
    parser.add_argument("--experiment", help="MLflow experiment (default: [pipeline] experiment)")
    parser.add_argument("--outputs-json", type=Path, help="also write the outputs as JSON here")
    parser.set_defaults(func=lambda args: execute(name, args), task=name)


def execute(name: str, args: argparse.Namespace) -> int:
    """Run the task from parsed arguments; print its summary and run id."""
    from mlpipe.tasks.context import TaskContext

    ctx = TaskContext.from_config()
    module = importlib.import_module(f"mlpipe.tasks.{TASK_MODULES[name]}")
    inputs, params = module.from_args(args, ctx)
    result = run_task(name, inputs, params, ctx=ctx, experiment=args.experiment)
    print(f"{name}: {result.summary}")
    print(f"{name}: MLflow run {result.run_id}")
    if args.outputs_json:
        record = {"task": name, "run_id": result.run_id, "outputs": result.outputs}
        args.outputs_json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


def task_main(name: str, argv: Sequence[str] | None = None) -> int:
    """``python -m mlpipe.tasks.<module>``: exit 0 ok, 1 failure, 2 bad input."""
    parser = argparse.ArgumentParser(prog=f"python -m mlpipe.tasks.{TASK_MODULES[name]}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    configure(parser, name)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return execute(name, args)
    except BadInput as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except MlpipeError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
