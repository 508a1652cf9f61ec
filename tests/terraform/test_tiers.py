"""tiers.yml is the one tier list: its consumers agree with it and refuse a broken one.

Consumers, each run for real: the local inventory script (through ansible-inventory),
Terraform's modules/tiers (through terraform, offline), and tf_inventory.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tfeval
import yaml
from tfpaths import TF_ROOT, TOP

TIERS_FILE = TOP / "tiers.yml"
TIERS: dict[str, Any] = yaml.safe_load(TIERS_FILE.read_text())["tiers"]
HOSTS_PY = TOP / "inventories" / "local" / "hosts.py"
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def ansible_inventory(*args: str, tiers: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if tiers:
        env["MLPIPE_TIERS_FILE"] = str(tiers)
    return subprocess.run(
        [str(ANSIBLE_INVENTORY), "-i", str(HOSTS_PY), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=TOP / "ansible",
    )


def terraform_tiers(work: Path, tiers: Path = TIERS_FILE) -> dict[str, Any]:
    """modules/tiers on a tier list, called as the environments call it."""
    root = work / "root"
    root.mkdir(parents=True)
    (root / "variables.tf").write_text('variable "tiers" {\n  type = any\n}\n')
    (root / "main.tf").write_text(
        'module "tiers" {\n'
        f'  source = "{TF_ROOT / "modules" / "tiers"}"\n'
        "  tiers  = var.tiers\n}\n"
    )
    h = tfeval.Harness(root, work / "harness")
    doc = yaml.safe_load(tiers.read_text())
    outputs = ("names", "vm_groups", "hosted_on", "public_ports", "service_rules")
    return h.evaluate({"tiers": doc["tiers"]}, {n: f"module.tiers.{n}" for n in outputs})


def _local_hosts(name: str) -> list[str]:
    """What tiers.yml says tier ``name``'s containers are (one name or a list)."""
    t = TIERS[name]
    host = t["local_host"] or TIERS[t["hosted_on"]]["local_host"]
    return host if isinstance(host, list) else [host]


def test_schema_of_every_tier() -> None:
    for name, t in TIERS.items():
        assert t["status"] in ("deployed", "planned"), name
        assert t["description"], name
        if t["local_host"] is None:
            assert TIERS[t["hosted_on"]]["local_host"], f"{name} is hosted on a host"
        else:
            first = "mlpipe-" + name.replace("_", "-")
            hosts = _local_hosts(name)
            assert hosts == [first] + [f"{first}-{i}" for i in range(2, len(hosts) + 1)], name
        for p in t.get("ports", []):
            assert set(p) <= {"port", "name", "description", "public", "from", "local_port"}, p
            assert p["public"] in (True, False), p
            assert set(p.get("from", [])) <= set(TIERS), p
        assert {"count", "machine_type", "disk_size_gb"} <= set(t["gcp"]), name


def test_what_is_deployed_is_what_site_yml_installs() -> None:
    """A tier is `deployed` exactly when a play of ansible/site.yml installs a service
    on its group (plays on `all` and the controller's do not count)."""
    plays = yaml.safe_load((TOP / "ansible/site.yml").read_text())
    named: set[str] = set()
    for play in plays:
        if "hosts" not in play:
            continue  # an import_playbook
        for part in str(play["hosts"]).split(":"):
            group = part.lstrip("!&").split("[", 1)[0]
            if group not in ("all", "localhost"):
                named.add(group)
    assert named <= set(TIERS), named - set(TIERS)
    deployed = {n for n, t in TIERS.items() if t["status"] == "deployed"}
    assert deployed == named


def test_local_inventory_is_the_tier_list() -> None:
    r = ansible_inventory("--list")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert listed["all"]["children"][1:] == list(TIERS)  # after ungrouped
    for name in TIERS:
        assert listed[name]["hosts"] == _local_hosts(name), name
    # the DALiuGE workers are two locally: a graph is spread over both
    assert listed["dlg_worker"]["hosts"] == ["mlpipe-dlg-worker", "mlpipe-dlg-worker-2"]
    # group_vars next to the script still apply (group_vars/all/connection.yml: the name
    # Mitogen's strategy takes over)
    hv = listed["_meta"]["hostvars"]["mlpipe-mlflow"]
    assert hv["ansible_connection"] == "docker"


def test_local_inventory_graph() -> None:
    r = ansible_inventory("--graph", "postgresql")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["@postgresql:", "|--mlpipe-mlflow"]


@pytest.mark.skipif(tfeval.TERRAFORM is None, reason="terraform is not on PATH")
def test_terraform_reads_the_same_tiers(tmp_path: Path) -> None:
    out = terraform_tiers(tmp_path)
    assert out["names"] == sorted(TIERS)
    assert {t: g["count"] for t, g in out["vm_groups"].items()} == {
        t: c["gcp"]["count"] for t, c in TIERS.items()
    }
    assert out["hosted_on"] == {
        t: c["hosted_on"] for t, c in TIERS.items() if c.get("hosted_on") and not c["gcp"]["count"]
    }
    assert out["public_ports"] == {
        t: [p["port"] for p in c["ports"] if p["public"]]
        for t, c in TIERS.items()
        if any(p["public"] for p in c.get("ports", []))
    }
    rules = {(r["target"], r["port"], tuple(r["sources"])) for r in out["service_rules"].values()}
    assert rules == {
        (t, p["port"], tuple(p["from"]))
        for t, c in TIERS.items()
        for p in c.get("ports", [])
        if not p["public"] and p.get("from")
    }


def test_gcp_inventory_groups_are_the_tiers(tf_inventory: Any, tf_output: dict[str, Any]) -> None:
    inv = tf_inventory.build_inventory(tf_output)
    assert list(inv["all"]["children"]) == list(TIERS)
    assert tf_inventory.TIERS_FILE == TIERS_FILE


def _broken(tmp_path: Path, edit: Any) -> Path:
    doc = yaml.safe_load(TIERS_FILE.read_text())
    edit(doc["tiers"])
    path = tmp_path / "tiers.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t["postgresql"].update(hosted_on="nowhere"), "hosted_on must name"),
        (lambda t: t["postgresql"].pop("hosted_on"), "hosted_on must name"),
        (lambda t: t["web"].update(local_host="mlpipe-ngas"), "already tier ngas's"),
        (lambda t: t["web"].update(local_host="Web Host"), "not a container host name"),
        (
            lambda t: t["web"].update(local_host=["mlpipe-web", "mlpipe-ngas"]),
            "already tier ngas's",
        ),
        (lambda t: t["web"].update(local_host=["mlpipe-web", 7]), "7 is not a container host"),
        (lambda t: t["web"].update(local_host=[]), "local_host is an empty list"),
    ],
)
def test_inventory_script_refuses_a_broken_list(tmp_path: Path, edit: Any, message: str) -> None:
    r = subprocess.run(
        [str(HOSTS_PY), "--list"],
        env=dict(os.environ, MLPIPE_TIERS_FILE=str(_broken(tmp_path, edit))),
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 1
    assert "tiers.yml" in r.stderr and message in r.stderr, r.stderr
    assert r.stdout == ""


@pytest.mark.skipif(tfeval.TERRAFORM is None, reason="terraform is not on PATH")
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t["postgresql"].update(hosted_on="nowhere"), "hosted_on must name another tier"),
        (lambda t: t["web"].update(status="soon"), "status must be deployed or planned"),
        (lambda t: t["mlflow"]["ports"][0].update({"from": ["bastion"]}), "must name a tier"),
        (lambda t: t["mlflow"]["gcp"].update(count=0), "give one of them a count > 0"),
    ],
)
def test_terraform_refuses_a_broken_list(tmp_path: Path, edit: Any, message: str) -> None:
    with pytest.raises(tfeval.TerraformError, match=message):
        terraform_tiers(tmp_path / "h", _broken(tmp_path, edit))
