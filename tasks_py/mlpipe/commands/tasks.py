"""``mlpipe load-raw|preprocess|train|retrain|infer|promote``: the pipeline tasks."""

from __future__ import annotations

import argparse

from mlpipe.tasks import TASK_MODULES
from mlpipe.tasks.cli import add_task_parser


def register(sub: argparse._SubParsersAction) -> None:
    for name in TASK_MODULES:
        add_task_parser(sub, name)
