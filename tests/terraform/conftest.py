"""Fixtures of the Terraform tests: paths, and the inventory generator as a module."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from tfpaths import TF_ROOT, TOP  # noqa: E402

__all__ = ["TF_ROOT", "TOP"]


@pytest.fixture(scope="session")
def tf_root() -> Path:
    return TF_ROOT


@pytest.fixture(scope="session")
def tf_inventory():
    spec = importlib.util.spec_from_file_location(
        "tf_inventory", TF_ROOT / "scripts" / "tf_inventory.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def tf_output() -> dict:
    return json.loads((HERE / "fixtures" / "tf_output_prod.json").read_text())


@pytest.fixture
def tf_copy(tmp_path: Path) -> Path:
    """A scratch copy of terraform/ (only .tf, README and scripts) to break on purpose."""
    dst = tmp_path / "terraform"
    shutil.copytree(
        TF_ROOT,
        dst,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"),
    )
    return dst
