"""``mlpipe load-raw|preprocess|train|retrain|infer|promote|convert|check``: the pipeline tasks."""

from __future__ import annotations

import argparse

from mlpipe.pipeline.executors.slurm import add_via_argument
from mlpipe.tasks.cli import configure
from mlpipe.tasks.registry import TASKS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for spec in TASKS.values():
        parser = sub.add_parser(spec.name, help=spec.summary, description=spec.doc)
        configure(parser, spec)
        add_via_argument(parser, spec)  # --via slurm: the task as one Slurm job
