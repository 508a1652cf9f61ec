"""Raw source specs -> local files: paths, directories (recursive), globs, URLs."""

from __future__ import annotations

import glob
import shutil
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import requests

from mlpipe.errors import BadInput, MlpipeError

URL_SCHEMES = ("http", "https")


def _download(url: str, dest_dir: Path) -> Path:
    name = Path(urllib.parse.urlsplit(url).path).name or "download"
    dest = dest_dir / name
    n = 1
    while dest.exists():
        dest, n = dest_dir / f"{n}-{name}", n + 1
    try:
        with requests.get(url, stream=True, timeout=60) as resp:
            if resp.status_code == 404:
                raise BadInput(f"raw source {url}: not found (HTTP 404); check the URL")
            resp.raise_for_status()
            with dest.open("wb") as fh:
                shutil.copyfileobj(resp.raw, fh)
    except requests.RequestException as exc:
        raise MlpipeError(f"raw source {url}: download failed ({exc}); retry later") from None
    return dest


def expand(specs: Iterable[str], base_dir: Path, download_dir: Path) -> list[tuple[str, Path]]:
    """``(source, local path)`` of every file named by ``specs``, in order, no duplicates.

    Relative paths and globs are relative to ``base_dir``. A spec that matches
    nothing is an error naming it.
    """
    out: list[tuple[str, Path]] = []
    seen: set[Path] = set()
    for spec in specs:
        scheme = urllib.parse.urlsplit(spec).scheme.lower()
        if scheme in URL_SCHEMES:
            out.append((spec, _download(spec, download_dir)))
            continue
        if scheme == "file":
            spec = urllib.parse.unquote(urllib.parse.urlsplit(spec).path)
        path = Path(spec).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if any(ch in spec for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            files = [p for p in matches if p.is_file()]
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files = [path]
        else:
            raise BadInput(f"raw source {spec}: no such file or directory (looked at {path})")
        if not files:
            raise BadInput(f"raw source {spec}: matches no files (looked at {path})")
        for f in files:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                out.append((spec, f))
    return out
