#!/usr/bin/env python3
"""Run mlpipe's playbooks through ansible-runner and report what changed.

    runbook.py up                      `make up`: secrets, then ansible/up.yml
    runbook.py down                    `make down`: ansible/local-cluster.yml, state absent
    runbook.py play NAME PLAYBOOK [-i INVENTORY] [-e KEY=VALUE ...]
                                        any playbook, with the same summary

The playbook's own output is shown as it runs. What changed is counted from
ansible-runner's stats (never from the printed text): each run ends with one
line ``NAME: no changes`` or ``NAME: N changes (host: n, ...)``; `up` ends
with ``make up: nothing changed`` or ``make up: done (N changes)``.
The demo pipeline's step counts come from its ``set_stats`` record.

Environment for `up`: NGAS_URL (an existing NGAS server), NGAS_SOURCE (a git
URL or local checkout the ngas role installs from), NGAS_VERSION.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

TOP = Path(__file__).resolve().parents[2]
ANSIBLE = TOP / "ansible"
LOCAL_INVENTORY = TOP / "inventories" / "local"
CLUSTER_LABEL = "org.mlpipe.cluster=local"


@dataclass
class Outcome:
    name: str
    rc: int
    changed: dict[str, int] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.changed.values())

    def line(self) -> str:
        if self.rc != 0:
            return f"{self.name}: FAILED (exit {self.rc}); the failing task is named above"
        if not self.total:
            return f"{self.name}: no changes"
        hosts = ", ".join(f"{h}: {n}" for h, n in sorted(self.changed.items()) if n)
        return f"{self.name}: {self.total} changes ({hosts})"


def mitogen_settings() -> dict[str, str]:
    """Ansible settings that run a playbook through Mitogen's strategy.

    Only the local cluster's playbooks use it (its hosts are containers reached with
    `docker exec`): Mitogen keeps one Python interpreter per host for the whole run
    instead of starting one for every task, which is most of a task's cost on this
    kind of machine. GCP sites keep Ansible's own strategy over SSH. MLPIPE_MITOGEN=0
    turns it off (then the same playbooks run with the linear strategy).
    """
    if os.environ.get("MLPIPE_MITOGEN", "1") == "0":
        return {}
    try:
        import ansible_mitogen  # noqa: PLC0415  (tests/requirements.txt)
    except ImportError as exc:
        raise SystemExit(
            f"runbook: {exc}: the local cluster's playbooks run through Mitogen; "
            "install the controller's tools with `make venv`, or set MLPIPE_MITOGEN=0"
        ) from exc
    strategies = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY_PLUGINS": str(strategies), "ANSIBLE_STRATEGY": "mitogen_linear"}


def play(
    name: str,
    playbook: Path,
    inventory: Path,
    extravars: dict[str, str] | None = None,
) -> Outcome:
    """Run one playbook with ansible-runner; its output streams to stdout."""
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(ANSIBLE / "ansible.cfg"))
    if inventory.resolve() == LOCAL_INVENTORY.resolve():
        for key, value in mitogen_settings().items():
            env.setdefault(key, value)
    # the venv's ansible-playbook, whatever PATH the caller has
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if not sys.stdout.isatty():
        env.setdefault("ANSIBLE_NOCOLOR", "1")  # logs and CI output stay plain text
    os.environ.update(env)  # ansible-runner starts ansible-playbook with os.environ
    with tempfile.TemporaryDirectory(prefix="mlpipe-runner-") as private:
        runner = ansible_runner.run(
            private_data_dir=private,
            project_dir=str(ANSIBLE),
            playbook=str(playbook.resolve()),
            inventory=str(inventory.resolve()),
            extravars=dict(extravars or {}),
            quiet=False,
            suppress_env_files=True,
        )
        stats = runner.stats or {}
        custom: dict[str, Any] = {}
        for event in runner.events:
            if event.get("event") == "playbook_on_stats":
                custom = dict(event.get("event_data", {}).get("artifact_data") or {})
    rc = int(runner.rc if runner.rc is not None else 1)
    outcome = Outcome(name, rc, dict(stats.get("changed") or {}), custom)
    print(outcome.line(), flush=True)
    return outcome


def ngas_extravars() -> dict[str, str]:
    names = {"NGAS_URL": "ngas_url", "NGAS_SOURCE": "ngas_source", "NGAS_VERSION": "ngas_version"}
    return {var: os.environ[env] for env, var in names.items() if os.environ.get(env)}


def up() -> int:
    print("== secrets", flush=True)
    secrets = subprocess.run(
        [sys.executable, str(ANSIBLE / "scripts" / "gen-secrets.py"), str(LOCAL_INVENTORY)],
        check=False,
    )
    if secrets.returncode != 0:
        print("make up: FAILED generating the secrets (message above)", file=sys.stderr)
        return secrets.returncode
    print("== preflight, local cluster, site, demo pipeline (ansible/up.yml)", flush=True)
    outcome = play("up", ANSIBLE / "up.yml", LOCAL_INVENTORY, ngas_extravars())
    if outcome.rc != 0:
        print(
            "make up: FAILED; the failing task is named above. Fix the cause and run "
            "make up again: finished work is kept and skipped.",
            file=sys.stderr,
        )
        return outcome.rc
    demo = outcome.custom.get("mlpipe_demo") or {}
    counts = demo.get("counts") or {}
    print(
        f"demo: {counts.get('ran', 0)} step(s) ran, {counts.get('skipped', 0)} unchanged "
        f"(skipped); pipeline {demo.get('pipeline', '?')}; runs at {demo.get('mlflow', '?')}"
    )
    print()
    if outcome.total == 0:
        print("make up: nothing changed: the platform was already up to date.")
    else:
        print(f"make up: done ({outcome.total} changes).")
    hosts = subprocess.run(
        ["docker", "ps", "--filter", f"label={CLUSTER_LABEL}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    print("Running now (local containers on Docker network 'mlpipe'; 'make down' removes them):")
    print(f"  hosts: {' '.join(sorted(hosts))}")
    site = (outcome.custom.get("mlpipe_site") or {}).get("url")
    if site:
        ca = TOP / ".cache" / "site-ca" / LOCAL_INVENTORY.name / "ca.pem"
        print(f"Results site: {site}/ (read-only; its certificate is signed by the site CA {ca}:")
        print(f"  curl --cacert {ca} {site}/models, or import ca.pem into a browser)")
    return 0


def down() -> int:
    outcome = play(
        "down",
        ANSIBLE / "local-cluster.yml",
        LOCAL_INVENTORY,
        {"mlpipe_cluster_state": "absent"},
    )
    return outcome.rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="make up: the platform on local containers, then the demo")
    sub.add_parser("down", help="make down: remove the local cluster")
    p = sub.add_parser("play", help="run one playbook and summarise its changes")
    p.add_argument("name", help="name used in the summary line")
    p.add_argument("playbook", type=Path)
    p.add_argument("-i", "--inventory", type=Path, default=LOCAL_INVENTORY)
    p.add_argument(
        "-e", "--extra-var", action="append", default=[], metavar="KEY=VALUE", dest="extra"
    )
    args = parser.parse_args(argv)
    if args.command == "up":
        return up()
    if args.command == "down":
        return down()
    extra: dict[str, str] = {}
    for item in args.extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"-e {item!r}: expected KEY=VALUE")
        extra[key] = value
    return play(args.name, args.playbook, args.inventory, extra).rc


if __name__ == "__main__":
    sys.exit(main())
