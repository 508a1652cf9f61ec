"""Build the mlpipe wheel once, versioned by its source; or describe the current one.

    build_wheel.py [--source DIR] [--dist DIR]
        Build dist/mlpipe-<version>-py3-none-any.whl from tasks_py/ unless a
        wheel of that version is already there, and print its path (stdout).
    build_wheel.py --info [--source DIR] [--dist DIR] [--wheel PATH]
        Print, as JSON, the wheel the source builds (or PATH): its path, name,
        version and exact pins ({"mlflow": "3.17.2", ...}, from its metadata).
        Exit 1, saying what to run, when that wheel is not built. Standard
        library only: the mlpipe_package role runs it on the Ansible controller.

The version is pyproject.toml's, with a PEP 440 local label made of the first
12 hex digits of the SHA-256 of the package's source files (pyproject.toml,
README.md and mlpipe/, without caches and hidden files): 0.1.0+1a2b3c4d5e6f.
Any change to those files gives a new version, so pip on a host installs it;
the same files give the same version, and the existing wheel is reused. The wheel is built by
`pip wheel` from a temporary copy of exactly those files (tasks_py/ itself is
never written to) and moved into dist/ complete, so a wheel in dist/ is never
half written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
SOURCE = TOP / "tasks_py"
DIST = TOP / "dist"
PACKAGE_FILES = ("pyproject.toml", "README.md")
PACKAGE_DIR = "mlpipe"
SKIPPED_DIRS = {"__pycache__"}
SKIPPED_SUFFIXES = (".pyc", ".pyo")
HOW_TO_BUILD = "make wheel  (or: .venv/bin/python ansible/scripts/build_wheel.py)"
# name[extras] == version, before any environment marker
EXACT_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;,]+)\s*(?:;|$)")


class WheelError(Exception):
    """Something the user must fix; the message says what."""


def source_files(source: Path) -> list[Path]:
    """The package's source files, relative to source, in a fixed order."""
    missing = [name for name in (*PACKAGE_FILES, PACKAGE_DIR) if not (source / name).exists()]
    if missing:
        raise WheelError(
            f"{source} is not the mlpipe package source: it has no {', '.join(missing)}"
        )
    files = [Path(name) for name in PACKAGE_FILES]
    files += sorted(
        path.relative_to(source) for path in _walk(source / PACKAGE_DIR) if path.is_file()
    )
    return files


def _walk(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):  # tool caches (.mypy_cache, ...), editor files
            continue
        if path.is_dir():
            if path.name not in SKIPPED_DIRS and not path.name.endswith(".egg-info"):
                yield from _walk(path)
        elif not path.name.endswith(SKIPPED_SUFFIXES):
            yield path


def fingerprint(source: Path, files: list[Path]) -> str:
    """SHA-256 over each file's relative path and content."""
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256((source / rel).read_bytes()).digest())
    return digest.hexdigest()


def project(source: Path) -> tuple[str, str]:
    """(name, version) from pyproject.toml's [project] table."""
    path = source / "pyproject.toml"
    try:
        table = tomllib.loads(path.read_text())["project"]
        name, version = str(table["name"]), str(table["version"])
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise WheelError(f"{path}: no [project] name and version ({exc})") from exc
    if "+" in version:
        raise WheelError(f"{path}: version {version} already has a local label")
    return name, version


def wheel_version(source: Path) -> tuple[str, str, list[Path]]:
    """(name, version with the source's local label, the files it covers)."""
    files = source_files(source)
    name, base = project(source)
    return name, f"{base}+{fingerprint(source, files)[:12]}", files


def wheel_path(dist: Path, name: str, version: str) -> Path:
    """Where the wheel of this name and version lives (pure-Python wheel)."""
    return dist / f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-py3-none-any.whl"


def metadata(wheel: Path) -> dict[str, list[str]]:
    """The wheel's METADATA headers (a header may repeat, e.g. Requires-Dist)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise WheelError(f"{wheel}: not a wheel (no single *.dist-info/METADATA)")
            text = archive.read(names[0]).decode()
    except (OSError, zipfile.BadZipFile) as exc:
        raise WheelError(f"{wheel}: cannot be read as a wheel ({exc})") from exc
    headers: dict[str, list[str]] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(": ")
        if sep and not line.startswith((" ", "\t")):
            headers.setdefault(key, []).append(value.strip())
    return headers


def pins(headers: dict[str, list[str]]) -> dict[str, str]:
    """Exact pins (name==version) of every requirement, extras included."""
    found: dict[str, str] = {}
    for requirement in headers.get("Requires-Dist", []):
        match = EXACT_PIN.match(requirement)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def describe(wheel: Path) -> dict[str, object]:
    headers = metadata(wheel)
    return {
        "wheel": str(wheel.resolve()),
        "name": headers.get("Name", [""])[0],
        "version": headers.get("Version", [""])[0],
        "pins": pins(headers),
    }


def check(wheel: Path, name: str, version: str) -> None:
    """The wheel is the one of this name and version (not a stray or damaged file)."""
    headers = metadata(wheel)
    got = (headers.get("Name", [""])[0], headers.get("Version", [""])[0])
    if got != (name, version):
        raise WheelError(f"{wheel} holds {got[0]} {got[1]}, not {name} {version}: delete it")


def build(source: Path, dist: Path) -> Path:
    """The wheel of the current source: the existing one, or a new build."""
    name, version, files = wheel_version(source)
    target = wheel_path(dist, name, version)
    if target.exists():
        check(target, name, version)
        return target
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlpipe-wheel-") as tmp:
        copy = Path(tmp, "src")
        for rel in files:
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, copy / rel)
        _set_version(copy / "pyproject.toml", version)
        out = Path(tmp, "out")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--wheel-dir", str(out), str(copy)],
            stdout=sys.stderr,
            check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise WheelError(f"pip wheel failed (exit {proc.returncode}) building {name} {version}")
        built = wheel_path(out, name, version)
        if not built.exists():
            made = sorted(p.name for p in out.iterdir())
            raise WheelError(f"pip wheel made {made}, not {built.name}")
        check(built, name, version)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.copyfile(built, partial)
        partial.replace(target)
    return target


def _set_version(pyproject: Path, version: str) -> None:
    """Give the copied pyproject.toml the labelled version; checked by reading it back."""
    text = pyproject.read_text()
    lines = text.splitlines(keepends=True)
    table = None
    for i, line in enumerate(lines):
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            table = header.group(1).strip()
        elif table == "project" and re.match(r"^\s*version\s*=", line):
            lines[i] = f'version = "{version}"\n'
            break
    pyproject.write_text("".join(lines))
    if project_version(pyproject) != version:
        raise WheelError(f"{pyproject}: could not set the version to {version}")


def project_version(pyproject: Path) -> str:
    return str(tomllib.loads(pyproject.read_text())["project"]["version"])


def info(source: Path, dist: Path, wheel: Path | None) -> dict[str, object]:
    if wheel is not None:
        if not wheel.is_file():
            raise WheelError(f"{wheel}: no such wheel")
        return describe(wheel)
    name, version, _ = wheel_version(source)
    target = wheel_path(dist, name, version)
    if not target.exists():
        raise WheelError(
            f"the {name} wheel of the current source ({source}, version {version}) is not "
            f"built: {target} is missing. Run: {HOW_TO_BUILD}"
        )
    check(target, name, version)
    return describe(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="package source (tasks_py/)")
    parser.add_argument("--dist", type=Path, default=DIST, help="where wheels are kept (dist/)")
    parser.add_argument("--info", action="store_true", help="describe the wheel, build nothing")
    parser.add_argument("--wheel", type=Path, help="with --info: describe this wheel instead")
    args = parser.parse_args(argv)
    try:
        if args.info:
            print(json.dumps(info(args.source, args.dist, args.wheel), sort_keys=True))
        elif args.wheel is not None:
            parser.error("--wheel goes with --info")
        else:
            print(build(args.source, args.dist))
    except WheelError as exc:
        print(f"build_wheel.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
