"""ansible/scripts/build_wheel.py: one wheel per source version, built from a copy.

Runs the script (real pip wheel) on a copy of tasks_py/ in a temp directory.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
SCRIPT = TOP / "ansible" / "scripts" / "build_wheel.py"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def snapshot(tree: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(tree)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(tree.rglob("*"))
    }


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "tasks_py"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(TOP / "tasks_py" / name, src / name)
    shutil.copytree(
        TOP / "tasks_py" / "mlpipe",
        src / "mlpipe",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
    )
    return src


def build(source: Path, dist: Path) -> Path:
    proc = run("--source", source, "--dist", dist)
    assert proc.returncode == 0, proc.stderr
    wheel = Path(proc.stdout.strip())
    assert wheel.parent == dist and wheel.is_file(), proc.stdout
    return wheel


def wheel_version(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (meta,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        (line,) = (x for x in archive.read(meta).decode().splitlines() if x.startswith("Version: "))
    return line.removeprefix("Version: ")


def test_builds_once_from_a_copy_and_reuses(tmp_path: Path, source: Path) -> None:
    before = snapshot(source)
    dist = tmp_path / "dist"
    wheel = build(source, dist)
    assert snapshot(source) == before  # the source tree is never written to
    base = tomllib.loads((source / "pyproject.toml").read_text())["project"]["version"]
    assert re.fullmatch(re.escape(base) + r"\+[0-9a-f]{12}", wheel_version(wheel))
    assert wheel.name == f"mlpipe-{wheel_version(wheel)}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert "mlpipe/cli.py" in archive.namelist()
    stamp = wheel.stat().st_mtime_ns
    assert build(source, dist) == wheel  # same source: the same wheel, not rebuilt
    assert wheel.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in dist.iterdir()) == [wheel.name]


def test_version_follows_the_source_not_its_caches(tmp_path: Path, source: Path) -> None:
    dist = tmp_path / "dist"
    first = build(source, dist)
    (source / "mlpipe" / "__pycache__").mkdir(exist_ok=True)
    (source / "mlpipe" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0cache")
    (source / "mlpipe" / ".mypy_cache").mkdir()
    (source / "mlpipe" / ".mypy_cache" / "x.json").write_text("{}")
    assert build(source, dist) == first
    with (source / "mlpipe" / "cli.py").open("a") as f:
        f.write("\n# a change\n")
    second = build(source, dist)
    assert second != first
    assert wheel_version(second) != wheel_version(first)
    assert first.exists()  # the older wheel is left alone


def test_info_describes_the_built_wheel_and_its_pins(tmp_path: Path, source: Path) -> None:
    dist = tmp_path / "dist"
    missing = run("--info", "--source", source, "--dist", dist)
    assert missing.returncode == 1
    assert "is not built" in missing.stderr
    assert "Run: make wheel" in missing.stderr
    assert missing.stdout == ""
    wheel = build(source, dist)
    proc = run("--info", "--source", source, "--dist", dist)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["wheel"] == str(wheel)
    assert info["version"] == wheel_version(wheel)
    ml = tomllib.loads((source / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "ml"
    ]
    pinned = {r.split("==")[0].lower(): r.split("==")[1].split()[0] for r in ml if "==" in r}
    assert info["pins"]["mlflow"] == pinned["mlflow"]
    given = run("--info", "--wheel", wheel)
    assert json.loads(given.stdout) == info


def test_info_refuses_a_missing_or_foreign_wheel(tmp_path: Path) -> None:
    proc = run("--info", "--wheel", tmp_path / "mlpipe-9.9.9-py3-none-any.whl")
    assert proc.returncode == 1
    assert "no such wheel" in proc.stderr
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip")
    proc = run("--info", "--wheel", junk)
    assert proc.returncode == 1
    assert "cannot be read as a wheel" in proc.stderr


def test_not_a_package_source_refused(tmp_path: Path) -> None:
    proc = run("--source", tmp_path, "--dist", tmp_path / "dist")
    assert proc.returncode == 1
    assert "is not the mlpipe package source" in proc.stderr
    assert not (tmp_path / "dist").exists()
