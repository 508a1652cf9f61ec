"""Lint rules of terraform/ on python-hcl2 parse trees (no provider needed): the
module layout, variables typed, described and used, module outputs consumed, no
hard-coded project or region. What the code builds (VMs, firewall, buckets) is
checked by evaluating it: test_tf_wiring.py.

Each ``check_*`` function takes the terraform/ directory and returns a list of
problems (empty = fine), so tests run them on the real tree and on deliberately
broken copies. python-hcl2 keeps HCL quoting: literal strings come back as
'"text"', expressions as '${...}', block labels as '"name"'.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
REGION_RE = re.compile(r"\b[a-z]+-[a-z]+[0-9]+(-[a-z])?\b")
LOCATION_KEYS = {"project", "project_id", "region", "zone", "location"}
TEXT_KEYS = {"description", "error_message", "condition", "__comments__", "display_name"}


def unq(s: Any) -> Any:
    """'"text"' -> 'text' (other values unchanged)."""
    if isinstance(s, str) and len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return s[1:-1]
    return s


def is_literal(s: Any) -> bool:
    return isinstance(s, str) and s.startswith('"') and "${" not in s


@dataclass
class TfDir:
    path: Path
    files: dict[str, dict] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    def blocks(self, kind: str) -> list[dict]:
        return [b for doc in self.files.values() for b in doc.get(kind, [])]

    def labelled(self, kind: str) -> dict[str, dict]:
        return {unq(k): v for b in self.blocks(kind) for k, v in b.items() if k != "__comments__"}

    def resources(self, rtype: str | None = None) -> dict[tuple[str, str], dict]:
        out = {}
        for b in self.blocks("resource"):
            for t, named in b.items():
                for n, body in named.items():
                    if rtype is None or unq(t) == rtype:
                        out[(unq(t), unq(n))] = body
        return out

    def locals(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for b in self.blocks("locals"):
            out.update({k: v for k, v in b.items() if not k.startswith("__")})
        return out

    def text(self) -> str:
        return "\n".join(self.raw.values())


def load(tf_root: Path) -> dict[str, TfDir]:
    """Every directory under tf_root holding .tf files, keyed by its path relative to tf_root."""
    return _load(str(Path(tf_root).resolve()), _mtime_key(Path(tf_root)))


def _mtime_key(root: Path) -> tuple:
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*.tf")))


@cache
def _load(root: str, _key: tuple) -> dict[str, TfDir]:
    dirs: dict[str, TfDir] = {}
    base = Path(root)
    for f in sorted(base.rglob("*.tf")):
        if ".terraform" in f.parts:
            continue
        rel = str(f.parent.relative_to(base))
        d = dirs.setdefault(rel, TfDir(f.parent))
        text = f.read_text()
        d.raw[f.name] = text
        d.files[f.name] = hcl2.loads(text)
    return dirs


def _walk(node: Any, path: tuple = ()):
    """Yield (key path, value) for every scalar under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, path)
    else:
        yield path, node


# ----------------------------------------------------------------- checks
def check_structure(tf_root: Path) -> list[str]:
    problems = []
    root = Path(tf_root)
    mods = [p for p in (root / "modules").iterdir() if p.is_dir()]
    if not {m.name for m in mods} >= {"network", "compute", "storage", "tiers"}:
        problems.append("modules/: network, compute, storage and tiers are required")
    for m in [*mods, root / "bootstrap", *(root / "environments").iterdir()]:
        for f in (
            MODULE_FILES
            if m.parent.name == "modules"
            else ("main.tf", "variables.tf", "outputs.tf", "versions.tf")
        ):
            if not (m / f).is_file():
                problems.append(f"{m.relative_to(root)}: missing {f}")
    for rel, d in load(root).items():
        if rel.startswith("modules/") and d.blocks("provider"):
            problems.append(f"{rel}: modules must not configure providers")
        versions = d.files.get("versions.tf", {})
        if d.blocks("resource") and "required_providers" not in json.dumps(versions):
            problems.append(f"{rel}: versions.tf must pin required_providers")
    return problems


def check_variables(tf_root: Path) -> list[str]:
    """Every variable typed, described (non-empty) and used outside its own block."""
    problems = []
    for rel, d in load(tf_root).items():
        used = json.dumps(
            {k: d.blocks(k) for k in ("locals", "resource", "module", "output", "data", "provider")}
        )
        for name, body in d.labelled("variable").items():
            if not body.get("type"):
                problems.append(f"{rel}: variable {name} has no type")
            if not str(unq(body.get("description", ""))).strip():
                problems.append(f"{rel}: variable {name} has no description")
            if not re.search(rf"\bvar\.{re.escape(name)}\b", used):
                problems.append(f"{rel}: variable {name} is never used")
        for name, body in d.labelled("output").items():
            if not str(unq(body.get("description", ""))).strip():
                problems.append(f"{rel}: output {name} has no description")
    return problems


def module_calls(d: TfDir) -> dict[str, str]:
    """call name => module directory name, for local modules."""
    return {n: Path(unq(b["source"])).name for n, b in d.labelled("module").items()}


def check_module_outputs_consumed(tf_root: Path, env: str = "environments/prod") -> list[str]:
    """Every output of every module is used by the environment composition."""
    dirs = load(tf_root)
    problems = []
    if env not in dirs:
        return [f"{env}: missing"]
    e = dirs[env]
    calls = module_calls(e)
    text = json.dumps([e.files[f] for f in e.files])
    for rel, d in dirs.items():
        if not rel.startswith("modules/"):
            continue
        mod = rel.split("/", 1)[1]
        callers = [c for c, m in calls.items() if m == mod]
        if not callers:
            problems.append(f"{env} does not use module {mod}")
            continue
        for out in d.labelled("output"):
            if not any(re.search(rf"\bmodule\.{c}\.{out}\b", text) for c in callers):
                problems.append(f"{rel}: output {out} is not consumed by {env}")
    return problems


def check_no_hardcoded_location(tf_root: Path) -> list[str]:
    """No literal project, region or zone: they come from variables without defaults."""
    problems = []
    for rel, d in load(tf_root).items():
        for fname, doc in d.files.items():
            for path, value in _walk(doc):
                if not isinstance(value, str) or any(k in TEXT_KEYS for k in path):
                    continue
                key = path[-1] if path else ""
                if key in LOCATION_KEYS and is_literal(value):
                    problems.append(f"{rel}/{fname}: literal {key} = {value}")
                if isinstance(value, str) and "${" not in value:
                    lit = unq(value)
                    if REGION_RE.fullmatch(lit) and not lit.startswith(
                        ("pd-", "e2-", "n2-", "debian-")
                    ):
                        problems.append(
                            f"{rel}/{fname}: hard-coded region/zone {lit} at {'.'.join(path)}"
                        )
                    if re.search(r"projects/[a-z][a-z0-9-]{4,}", lit):
                        problems.append(f"{rel}/{fname}: hard-coded project in {lit}")
        for name, body in d.labelled("variable").items():
            if name in ("project_id", "region") and "default" in body:
                problems.append(f"{rel}: variable {name} must have no default")
    return problems


ALL_CHECKS = (
    check_structure,
    check_variables,
    check_module_outputs_consumed,
    check_no_hardcoded_location,
)
