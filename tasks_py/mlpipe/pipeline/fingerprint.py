"""Content hashes of a step's task, parameters and inputs (the skip key).

* NGAS file sets count by ``(id, checksum)``: re-archiving equal bytes as a
  new version changes nothing;
* model references are resolved now (``models:/m@production`` -> the version
  the alias points to), so promoting a version makes dependent steps run;
* local raw sources of ``load-raw`` count by their bytes (sha256); URLs by text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlpipe.tasks.sources import URL_SCHEMES


def _value(value: Any, resolve_model: Callable[[str], str]) -> Any:
    if isinstance(value, str) and value.startswith("models:/"):
        return resolve_model(value)
    if isinstance(value, list) and all(isinstance(v, dict) and "id" in v for v in value):
        return [[v["id"], str(v.get("checksum", ""))] for v in value]
    return value


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sources_digest(sources: list[str], base_dir: Path) -> list[list[str]]:
    """``[[source, sha256]]`` of local raw sources (URLs are taken as they are)."""
    from mlpipe.tasks.sources import expand

    local = [s for s in sources if s.split("://", 1)[0].lower() not in URL_SCHEMES]
    out = [[s, "url"] for s in sources if s not in local]
    for _, path in expand(local, base_dir, base_dir):
        out.append([str(path), _file_digest(path)])
    return out


def step_hash(
    task: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, Any],
    resolve_model: Callable[[str], str],
    extra: Any = None,
) -> str:
    doc = {
        "task": task,
        "params": {k: _value(v, resolve_model) for k, v in sorted(params.items())},
        "inputs": {k: _value(v, resolve_model) for k, v in sorted(inputs.items())},
        "extra": extra,
    }
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
