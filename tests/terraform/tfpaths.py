"""Paths of the Terraform tests (imported by name: every test directory has a conftest)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[1]
TF_ROOT = TOP / "terraform"
