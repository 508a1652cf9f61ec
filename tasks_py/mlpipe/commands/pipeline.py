"""``mlpipe pipeline validate|run FILE``: check or run a pipeline.yaml.

``run`` skips steps whose task, inputs and parameters are unchanged since their
last successful run and so resumes after a failure from the failed step.
Exit codes: 0 all steps ok, 2 bad input (invalid pipeline, a step refused its
input), 1 a step failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("pipeline", help="validate or run a pipeline.yaml")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("validate", help="check a pipeline without running anything")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_validate)
    p = actions.add_parser("run", help="run a pipeline (unchanged steps are skipped)")
    p.add_argument("file", type=Path)
    p.add_argument("--executor", default="local", help="local (default)")
    p.add_argument("--workers", type=int, help="concurrent steps (default [pipeline] max_workers)")
    p.add_argument("--force", action="store_true", help="run every step, even unchanged ones")
    p.set_defaults(func=_run)


def _context():
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
    from mlpipe.pipeline.executors import get_executor
    from mlpipe.pipeline.runner import check, run_pipeline

    ctx = _context()
    _, report = check(args.file, ctx)
    get_executor(args.executor)  # an unknown executor is bad input before anything runs
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    ctx.setup_mlflow()
    outcomes = run_pipeline(args.file, ctx, args.executor, args.force, args.workers)
    for name, out in outcomes.items():
        run = f" run {out.run_id}" if out.run_id else ""
        stream = sys.stdout if out.status in ("ran", "skipped") else sys.stderr
        print(f"{name}: {out.status}{run}: {out.summary}", file=stream)
    failed = [o for o in outcomes.values() if o.status == "failed"]
    if not failed:
        return 0
    print(
        f"{args.file}: {len(failed)} step(s) failed; fix the cause and run again: "
        "finished steps are skipped",
        file=sys.stderr,
    )
    return 2 if all(o.bad_input for o in failed) else 1
