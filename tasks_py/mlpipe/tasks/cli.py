"""Command-line glue shared by ``mlpipe <task>`` and ``python -m mlpipe.tasks.<task>``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mlpipe.errors import run_guarded
from mlpipe.tasks.invoke import run_spec
from mlpipe.tasks.spec import TaskSpec


def configure(parser: argparse.ArgumentParser, spec: TaskSpec) -> None:
    """The task's own options and the common ones; ``func`` runs it."""
    spec.add_arguments(parser)
    parser.add_argument("--experiment", help="MLflow experiment (default: [pipeline] experiment)")
    parser.add_argument("--outputs-json", type=Path, help="also write the outputs as JSON here")
    parser.set_defaults(func=lambda args: execute(spec, args), task=spec.name)


def execute(spec: TaskSpec, args: argparse.Namespace) -> int:
    """Run the task from parsed arguments; print its summary and run id."""
    from mlpipe.tasks.context import TaskContext

    ctx = TaskContext.from_config()
    inputs, params = spec.from_args(args, ctx)
    result = run_spec(spec, inputs, params, ctx=ctx, experiment=args.experiment)
    print(f"{spec.name}: {result.summary}")
    print(f"{spec.name}: MLflow run {result.run_id}")
    if args.outputs_json:
        record = {"task": spec.name, "run_id": result.run_id, "outputs": result.outputs}
        args.outputs_json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


def task_main(spec: TaskSpec, argv: Sequence[str] | None = None) -> int:
    """``python -m mlpipe.tasks.<module>``: exit 0 ok, 1 failure, 2 bad input."""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    prog = f"python -m {main_spec.name}" if main_spec else None
    parser = argparse.ArgumentParser(prog=prog, description=spec.doc)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    configure(parser, spec)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return run_guarded(spec.name, lambda: execute(spec, args))
