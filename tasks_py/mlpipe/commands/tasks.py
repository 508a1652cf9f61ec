"""``mlpipe load-raw|preprocess|train|retrain|infer|promote``: the pipeline tasks."""

from __future__ import annotations

import argparse

from mlpipe.tasks.cli import configure
from mlpipe.tasks.registry import TASKS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for spec in TASKS.values():
        configure(sub.add_parser(spec.name, help=spec.summary, description=spec.doc), spec)
