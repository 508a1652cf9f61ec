"""``mlpipe monitor run|status``: the erosion monitor of a registered model.

Settings in ``[monitor]`` (``MLPIPE_MONITOR_<KEY>``; docs/pipeline.md "Erosion
monitor"). ``run`` evaluates every inference batch whose truth has arrived, logs its
error and drift figures to MLflow and, above a threshold, triggers a retrain (at most
one pending): exit 0, or 1 when a batch failed (it is tried again next pass) or the
retrain could not be started. ``status`` prints the pending retrain, if any.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING

from mlpipe.errors import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from mlpipe.config import Config, MonitorConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("monitor", help="erosion monitor: error and drift of inference batches")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="evaluate the batches whose truth has arrived; retrain above a threshold",
    )
    run.add_argument("--model", help="registered model (default [monitor] model, [model] name)")
    run.set_defaults(func=_run)
    status = actions.add_parser("status", help="the pending retrain and the last trigger")
    status.add_argument("--model", help="registered model (default [monitor] model, [model] name)")
    status.add_argument("--json", action="store_true", help="the state as JSON")
    status.set_defaults(func=_status)


def _settings(args: argparse.Namespace) -> tuple[Config, MonitorConfig]:
    """The config and ``[monitor]`` with its model filled in (``--model`` first)."""
    from mlpipe.config import load_config

    config = load_config()
    model = args.model or config.monitor.model or config.model.name
    return config, dataclasses.replace(config.monitor, model=model)


def _run(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from mlpipe.monitor.erosion import Monitor
    from mlpipe.monitor.trigger import MonitorBusy
    from mlpipe.tasks.context import TaskContext

    config, cfg = _settings(args)
    ctx = TaskContext.from_config(config)
    monitor = Monitor(ctx, cfg, MlflowClient())
    try:
        done = monitor.run()
    except MonitorBusy as exc:
        print(f"monitor: {exc}")
        return EXIT_OK
    triggered = sum(d.outcome == "triggered" for d in done.decisions)
    print(
        f"monitor {done.model}: {len(done.evaluated)} batch(es) evaluated, "
        f"{len(done.waiting)} waiting for truth, {len(done.failed)} failed, "
        f"{triggered} retrain(s) triggered"
    )
    return EXIT_OK if done.ok else EXIT_FAILED


def _status(args: argparse.Namespace) -> int:
    from mlpipe.monitor.trigger import MonitorBusy, TriggerState

    _, cfg = _settings(args)
    model = cfg.model
    state = TriggerState(cfg, model)
    try:
        with state:
            data, running = state.status()
    except MonitorBusy:  # a pass is running: read the state without changing it
        data = state.read()
        pending = data.get("pending")
        running = isinstance(pending, dict) and state.running(pending)
    if args.json:
        print(json.dumps({**data, "running": running}, indent=1, sort_keys=True))
        return EXIT_OK
    pending = data.get("pending")
    if running and isinstance(pending, dict):
        print(
            f"monitor {model}: retrain pending since {pending.get('since')} "
            f"({pending.get('how')}): {pending.get('reason')}"
        )
    else:
        print(f"monitor {model}: no retrain pending")
    last = data.get("last_trigger")
    if isinstance(last, int | float):
        from mlpipe.monitor.trigger import when

        print(f"monitor {model}: last trigger {when(last)}: {data.get('last_reason', '')}")
    return EXIT_OK
