#!/usr/bin/env python3
"""The local cluster's Ansible inventory, read from tiers.yml at the repository root.

One group per tier, in the file's order. A tier with a ``local_host`` is that
container, or those containers when it is a list (dlg_worker: two workers); ``make up``
creates one systemd container per host (ansible/local-cluster.yml). A tier whose
``local_host`` is null is a group of the hosts of its ``hosted_on`` tier (postgresql on
mlpipe-mlflow). Group variables live next to this script
(group_vars/). An Ansible inventory script:

    hosts.py --list          every group and host, as JSON
    hosts.py --host <host>   the host's variables (none: they come from group_vars)

MLPIPE_TIERS_FILE names another tier list (tests use it).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[2]
TIERS_FILE = TOP / "tiers.yml"
TIER_NAME = re.compile(r"^[a-z][a-z_]{0,18}[a-z]$")
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the interpreter Ansible found
    venv_python = TOP / ".venv" / "bin" / "python"
    if venv_python.is_file() and Path(sys.executable).resolve() != venv_python.resolve():
        # `#!/usr/bin/env python3` found an interpreter without PyYAML: use the kit's venv.
        os.execv(str(venv_python), [str(venv_python), __file__, *sys.argv[1:]])
    sys.exit(
        f"{__file__}: PyYAML is missing for {sys.executable}: run `make venv` "
        "(the kit's .venv has it) or install python3-yaml"
    )


class TierListError(Exception):
    """tiers.yml cannot be turned into the local inventory."""


def load_tiers(path: Path) -> dict[str, dict[str, Any]]:
    """The ``tiers`` mapping of the tier list, with the fields this inventory reads checked."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise TierListError(f"{path}: cannot read the tier list: {e}") from e
    tiers = doc.get("tiers") if isinstance(doc, dict) else None
    if not isinstance(tiers, dict) or not tiers:
        raise TierListError(f"{path}: needs a non-empty mapping `tiers: {{<tier>: ...}}`")
    problems: list[str] = []
    hosts: dict[str, str] = {}
    for name, tier in tiers.items():
        if not isinstance(name, str) or not TIER_NAME.match(name):
            problems.append(f"tier {name!r}: names are 2-20 lowercase letters and underscores")
            continue
        if not isinstance(tier, dict):
            problems.append(f"tier {name}: must be a mapping")
            continue
        host = tier.get("local_host")
        hosted_on = tier.get("hosted_on")
        if isinstance(host, list) and not host:
            problems.append(f"tier {name}: local_host is an empty list; name a host or use null")
        elif host is None:
            if hosted_on not in tiers or not isinstance(tiers[hosted_on], dict):
                problems.append(
                    f"tier {name}: local_host is null, so hosted_on must name the tier"
                    " whose host it runs on"
                )
            elif not tiers[hosted_on].get("local_host"):
                problems.append(f"tier {name}: hosted_on {hosted_on} has no local_host either")
        else:
            for one in host if isinstance(host, list) else [host]:
                if not isinstance(one, str) or not HOST_NAME.match(one):
                    problems.append(f"tier {name}: local_host {one!r} is not a container host name")
                elif one in hosts:
                    problems.append(f"tier {name}: local_host {one} is already tier {hosts[one]}'s")
                else:
                    hosts[one] = name
    if problems:
        raise TierListError(f"{path}: " + "; ".join(problems))
    return tiers


def local_hosts(tiers: dict[str, dict[str, Any]], name: str) -> list[str]:
    """The containers of tier ``name``: its ``local_host`` (one or a list), else its
    ``hosted_on`` tier's."""
    host = tiers[name].get("local_host") or tiers[tiers[name]["hosted_on"]]["local_host"]
    return list(host) if isinstance(host, list) else [host]


def inventory(tiers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``--list`` answer: groups in file order, every host's variables in ``_meta``."""
    out: dict[str, Any] = {"all": {"children": list(tiers)}}
    hostvars: dict[str, dict[str, Any]] = {}
    for name in tiers:
        hosts = local_hosts(tiers, name)
        out[name] = {"hosts": hosts}
        for host in hosts:
            hostvars.setdefault(host, {})
    out["_meta"] = {"hostvars": hostvars}
    return out


def main(argv: list[str]) -> int:
    path = Path(os.environ.get("MLPIPE_TIERS_FILE") or TIERS_FILE)
    if argv[:1] == ["--host"] and len(argv) == 2:
        answer: dict[str, Any] = {}
    elif argv == ["--list"]:
        try:
            answer = inventory(load_tiers(path))
        except TierListError as e:
            print(f"{__file__}: {e}", file=sys.stderr)
            return 1
    else:
        print(f"usage: {sys.argv[0]} --list | --host <host>", file=sys.stderr)
        return 2
    json.dump(answer, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
