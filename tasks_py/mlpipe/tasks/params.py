"""Command-line helpers shared by the task parsers: ``-p key=value`` and input specs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from mlpipe.errors import BadInput


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
