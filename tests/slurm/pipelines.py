"""Pipeline documents the Slurm tests share."""

from __future__ import annotations

from typing import Any


def first_steps() -> dict[str, dict[str, Any]]:
    """The example pipeline's first tasks on one year of data (a fresh copy each call):
    load (raw/seattle-2015.csv) -> raw, preprocess (lags 2) -> data."""
    return {
        "load": {
            "task": "load-raw",
            "params": {"sources": ["raw/seattle-2015.csv"]},
            "outputs": {"raw": "raw"},
        },
        "preprocess": {
            "task": "preprocess",
            "inputs": {"raw": "raw"},
            "params": {"lags": 2},
            "outputs": {"preprocessed": "data"},
        },
    }
