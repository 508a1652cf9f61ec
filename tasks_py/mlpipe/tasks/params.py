"""Command-line helpers shared by the task parsers: ``-p key=value`` and input specs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from mlpipe.errors import BadInput
from mlpipe.storage import NgasClient
from mlpipe.tasks.filesets import resolve


def parse_kv(items: Sequence[str] | None, option: str = "-p") -> dict[str, Any]:
    """``["alpha=0.1", "name=x"]`` -> ``{"alpha": 0.1, "name": "x"}`` (JSON values if valid)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{option} {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(text)
        except ValueError:
            out[key.strip()] = text
    return out


def add_param_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help=f"{what} (repeatable; values are JSON if they parse, else strings)",
    )


def add_destination_options(parser: argparse.ArgumentParser, default: str) -> None:
    """``--prefix`` (default ``default``) and ``--quarantine`` of the tasks storing files."""
    parser.add_argument("--prefix", help=f"NGAS id prefix of the outputs (default: {default})")
    parser.add_argument("--quarantine", help="NGAS id prefix for unusable raw files")


def data_and_model(client: NgasClient, args: argparse.Namespace, what: str) -> dict[str, Any]:
    """Inputs ``data`` (``args.data`` resolved on NGAS) and ``model`` (if ``--model`` was given)."""
    inputs: dict[str, Any] = {"data": resolve(client, args.data, what)}
    if args.model:
        inputs["model"] = args.model
    return inputs
