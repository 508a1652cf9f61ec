"""Static checks of terraform/ on python-hcl2 parse trees (no provider needed).

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
IAP_RANGE = "35.235.240.0/20"
# TCP ports the platform's tiers use between each other (docs/gcp.md).
SERVICE_PORTS = {"7777", "5000", "5432", "8000", "8001", "5555", "6666", "6817", "6818"}
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
    if {m.name for m in mods} < {"network", "compute", "storage"}:
        problems.append("modules/: network, compute and storage are required")
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
        if "required_providers" not in json.dumps(versions):
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


def _ports(rule: dict) -> set[str]:
    out: set[str] = set()
    for a in rule.get("allow", []):
        ports = a.get("ports") or []
        out |= {ports} if isinstance(ports, str) else {unq(p) for p in ports}
    return out


def check_firewall(tf_root: Path) -> list[str]:
    """Only the web rule is open to 0.0.0.0/0 (80/443); SSH only from var.ssh_source_ranges
    (default IAP); internal rules by source tags on the service ports only."""
    dirs = load(tf_root)
    problems = []
    for rel, d in dirs.items():
        for (_t, n), body in d.resources("google_compute_firewall").items():
            where = f"{rel}: firewall {n}"
            ranges = body.get("source_ranges")
            ports = _ports(body)
            if body.get("direction") and unq(body["direction"]) != "INGRESS":
                continue
            if "0.0.0.0/0" in json.dumps(ranges):
                if 'tier_tags[\\"web\\"]' not in json.dumps(body.get("target_tags")):
                    problems.append(
                        f"{where}: open to the internet but not targeted at the web tier"
                    )
                via_var = {p for p in ports if "var.web_public_ports" in p}
                if not ports - via_var <= {"80", "443"}:
                    problems.append(f"{where}: open to the internet on {sorted(ports - via_var)}")
                if via_var:
                    var = d.labelled("variable").get("web_public_ports", {})
                    default = {str(p) for p in var.get("default", [])}
                    if not default or not default <= {"80", "443"}:
                        problems.append(
                            f"{where}: web_public_ports default {sorted(default)} beyond 80/443"
                        )
                    if "contains([80, 443]" not in json.dumps(var.get("validation", [])):
                        problems.append(f"{where}: web_public_ports must be validated to 80/443")
            elif "22" in ports:
                if ranges != "${var.ssh_source_ranges}":
                    problems.append(
                        f"{where}: SSH must come from var.ssh_source_ranges, not {ranges}"
                    )
                var = d.labelled("variable").get("ssh_source_ranges", {})
                if [unq(x) for x in var.get("default", [])] != [IAP_RANGE]:
                    problems.append(
                        f"{where}: ssh_source_ranges must default to the IAP range {IAP_RANGE}"
                    )
                if "0.0.0.0" not in json.dumps(var.get("validation", [])):
                    problems.append(
                        f"{where}: ssh_source_ranges must reject 0.0.0.0/n in a validation"
                    )
            else:
                if ranges is not None:
                    problems.append(
                        f"{where}: internal rule must select sources by tag, not {ranges}"
                    )
                if not body.get("source_tags"):
                    problems.append(f"{where}: internal rule without source_tags")
        rules = d.locals().get("service_rules")
        if isinstance(rules, dict):
            used = {unq(p) for r in rules.values() for p in r.get("ports", [])}
            extra, lacking = sorted(used - SERVICE_PORTS), sorted(SERVICE_PORTS - used)
            if extra:
                problems.append(
                    f"{rel}: service_rules open ports the platform does not use: {extra}"
                )
            if lacking:
                problems.append(f"{rel}: service_rules lack ports the platform uses: {lacking}")
    if not any(d.resources("google_compute_firewall") for d in dirs.values()):
        problems.append("no firewall rules found")
    for rel, d in dirs.items():
        for fname, text in d.raw.items():
            if "0.0.0.0/0" in text and fname != "main.tf":
                problems.append(f"{rel}/{fname}: mentions 0.0.0.0/0")
    return problems


def check_public_ips(tf_root: Path) -> list[str]:
    """External IPs (access_config, addresses) only on the web tier."""
    problems = []
    for rel, d in load(tf_root).items():
        loc = d.locals()
        public = str(loc.get("public_instances", ""))
        for (t, n), body in d.resources().items():
            where = f"{rel}: {t}.{n}"
            nics = body.get("network_interface", [])
            has_public = any(
                "access_config" in nic for nic in nics
            ) or "access_config" in json.dumps(body.get("dynamic", []))
            if (
                t in ("google_compute_instance", "google_compute_instance_template")
                and has_public
                or t == "google_compute_address"
            ):
                if body.get("for_each") != "${local.public_instances}":
                    problems.append(f"{where}: external IP outside local.public_instances")
                elif not re.search(r'tier == \\?"web\\?"', public):
                    problems.append(f"{rel}: local.public_instances must select the web tier only")
                if t == "google_compute_address" and unq(body.get("address_type")) != "EXTERNAL":
                    problems.append(f"{where}: unexpected address type")
    return problems


def check_instances(tf_root: Path) -> list[str]:
    """OS Login, blocked project keys, Shielded VM, dedicated service account, no IP forwarding."""
    problems = []
    for rel, d in load(tf_root).items():
        meta = d.locals().get("metadata", {})
        for (_t, n), body in d.resources("google_compute_instance").items():
            where = f"{rel}: instance {n}"
            md = meta if body.get("metadata") == "${local.metadata}" else body.get("metadata", {})
            if (
                unq(md.get("enable-oslogin")) != "TRUE"
                or unq(md.get("block-project-ssh-keys")) != "true"
            ):
                problems.append(f"{where}: OS Login must be on and project SSH keys blocked")
            sh = (body.get("shielded_instance_config") or [{}])[0]
            if not all(
                sh.get(k) is True
                for k in ("enable_secure_boot", "enable_vtpm", "enable_integrity_monitoring")
            ):
                problems.append(f"{where}: Shielded VM (secure boot, vTPM, integrity) required")
            sa = (body.get("service_account") or [{}])[0]
            if "google_service_account." not in str(sa.get("email")):
                problems.append(f"{where}: must run as a dedicated service account")
            if body.get("can_ip_forward") is not False:
                problems.append(f"{where}: can_ip_forward must be false")
    return problems


def check_buckets(tf_root: Path) -> list[str]:
    problems = []
    for rel, d in load(tf_root).items():
        for (_t, n), body in d.resources("google_storage_bucket").items():
            where = f"{rel}: bucket {n}"
            if unq(body.get("public_access_prevention")) != "enforced":
                problems.append(f"{where}: public_access_prevention must be enforced")
            if body.get("uniform_bucket_level_access") is not True:
                problems.append(f"{where}: uniform_bucket_level_access must be true")
            if not any(v.get("enabled") is True for v in body.get("versioning", [])):
                problems.append(f"{where}: versioning must be enabled")
            if not body.get("lifecycle_rule") and "lifecycle_rule" not in json.dumps(
                body.get("dynamic", [])
            ):
                problems.append(f"{where}: lifecycle rules required")
        if re.search(r"allUsers|allAuthenticatedUsers", d.text()):
            problems.append(f"{rel}: grants to allUsers/allAuthenticatedUsers")
    return problems


def check_checkov_skips(tf_root: Path) -> list[str]:
    """Every checkov skip carries a real reason."""
    problems = []
    for rel, d in load(tf_root).items():
        for fname, text in d.raw.items():
            for m in re.finditer(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?", text):
                if len((m.group(2) or "").strip()) < 20:
                    problems.append(f"{rel}/{fname}: checkov skip {m.group(1)} without a reason")
    return problems


ALL_CHECKS = (
    check_structure,
    check_variables,
    check_module_outputs_consumed,
    check_no_hardcoded_location,
    check_firewall,
    check_public_ips,
    check_instances,
    check_buckets,
    check_checkov_skips,
)
