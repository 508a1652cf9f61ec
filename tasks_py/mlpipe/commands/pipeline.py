"""``mlpipe pipeline validate|run FILE``: check or run a pipeline.yaml.

``run`` skips steps whose task, inputs and parameters are unchanged since their
last successful run and so resumes after a failure from the failed step.
``run --json`` prints one JSON object (the run's summary) on stdout and
everything else on stderr. Exit codes: 0 all steps ok, 2 bad input (invalid
pipeline, a step refused its input), 1 a step failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlpipe.tasks.context import TaskContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("pipeline", help="validate or run a pipeline.yaml")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("validate", help="check a pipeline without running anything")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_validate)
    p = actions.add_parser("run", help="run a pipeline (unchanged steps are skipped)")
    p.add_argument("file", type=Path)
    p.add_argument(
        "--executor",
        default="local",
        help="local (default), daliuge ([daliuge] island) or slurm (batch jobs, [slurm])",
    )
    p.add_argument("--workers", type=int, help="concurrent steps (default [pipeline] max_workers)")
    p.add_argument("--force", action="store_true", help="run every step, even unchanged ones")
    p.add_argument(
        "--json", action="store_true", help="print the run's summary as one JSON object on stdout"
    )
    p.set_defaults(func=_run)
    p = actions.add_parser("export", help="write the pipeline as a DALiuGE logical graph (EAGLE)")
    p.add_argument("file", type=Path)
    p.add_argument("--format", required=True, choices=["daliuge-lg"], help="daliuge-lg")
    p.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    p.set_defaults(func=_export)


def _context() -> TaskContext:
    """Config and model plugin only: MLflow is set up once the pipeline is known good."""
    from mlpipe.config import load_config
    from mlpipe.tasks.context import TaskContext

    return TaskContext(load_config())


def _validate(args: argparse.Namespace) -> int:
    from mlpipe.pipeline.runner import check

    pipeline, report = check(args.file, _context())
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.file}: pipeline {pipeline.name} is valid ({len(pipeline.steps)} steps)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from mlpipe.pipeline.executors import check_executor
    from mlpipe.pipeline.runner import check, run_pipeline
    from mlpipe.pipeline.step import OK_STATUSES

    ctx = _context()
    _, report = check(args.file, ctx)
    check_executor(args.executor)  # an unknown executor is bad input before anything runs
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    ctx.setup_mlflow()
    stdout = sys.stdout
    # with --json, whatever else is printed (the human lines, MLflow's run links) goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = run_pipeline(args.file, ctx, args.executor, args.force, args.workers)
        for name, out in result.outcomes.items():
            run = f" run {out.run_id}" if out.run_id else ""
            stream = sys.stdout if out.status in OK_STATUSES else sys.stderr
            print(f"{name}: {out.status}{run}: {out.summary}", file=stream)
    if result.failed:
        print(
            f"{args.file}: {len(result.failed)} step(s) failed; fix the cause and run again: "
            "finished steps are skipped",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result.summary()), file=stdout)
    return result.exit_code


def _export(args: argparse.Namespace) -> int:
    from mlpipe.pipeline.export_daliuge import export

    ctx = _context()
    text = export(args.file, ctx)
    if args.output is None:
        print(text)
    else:
        args.output.write_text(text + "\n")
        print(f"{args.output}: logical graph of {args.file} (open it in EAGLE)", file=sys.stderr)
    return 0
