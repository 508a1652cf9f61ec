#!/usr/bin/env python3
"""Turn ``terraform output -json`` of terraform/environments/<env> into an Ansible inventory.

    terraform -chdir=terraform/environments/prod output -json > out.json
    tf_inventory.py --tf-output out.json --out inventories/gcp/hosts.yml \\
        --ssh-user alice_example_org --ssh-via iap

Writes a YAML inventory with one group per tier of tiers.yml (the repository's tier
list; ``--tiers`` names another). Each host is named like its VM and has
``ansible_host`` = its internal IP. How Ansible reaches it (``--ssh-via``):

iap     (default) SSH through Identity-Aware Proxy TCP forwarding: a per-host
        ProxyCommand ``gcloud compute start-iap-tunnel <vm> 22 --listen-on-stdin``.
        Needs gcloud and roles/iap.tunnelResourceAccessor; no VM exposes port 22.
direct  plain SSH to the internal IP: the controller runs inside the VPC (a VM or
        a VPN-connected network within ssh_source_ranges).

A VM with a data disk (``data_disk`` in the ``hosts`` output) gets
``datadisk_device_name``: the disk's device name, which the guest sees as
/dev/disk/by-id/google-<name>; the datadisk role formats it when blank, mounts it
and puts on it the directories of the host's tiers (ansible/group_vars/all/site.yml).

A tier without VMs of its own that the ``hosted_on`` output names (postgresql =>
mlflow by default) is a group of the VMs it runs on. ``all.vars`` carry what the
site needs from Terraform: ``mlpipe_private_cidr``, ``mlpipe_bucket_backups``,
``mlpipe_bucket_mlflow_artifacts`` (empty unless MLflow's artifacts are in a bucket:
then the site sets ``mlflow_artifacts_destination`` to ``gs://<it>``) and
``mlpipe_gcp_*``.
No secret ever goes through here (Terraform state has none).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

TIERS_FILE = Path(__file__).resolve().parents[2] / "tiers.yml"
TIER_NAME = re.compile(r"^[a-z][a-z_]{0,18}[a-z]$")
# A GCE disk device name (RFC 1035 label, as Terraform's attached_disk takes it).
DEVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")

# Every output of terraform/environments/<env>/outputs.tf; tests check both lists agree.
CONSUMED_OUTPUTS = (
    "hosts",
    "hosted_on",
    "private_cidr",
    "network",
    "bucket_backups",
    "bucket_mlflow_artifacts",
    "service_accounts",
    "project_id",
    "region",
    "environment",
)

SSH_MODES = ("iap", "direct")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


class InventoryError(Exception):
    """The Terraform outputs cannot be turned into an inventory."""


def load_groups(path: Path = TIERS_FILE) -> tuple[str, ...]:
    """The inventory groups: the tier names of tiers.yml, in file order."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise InventoryError(f"{path}: cannot read the tier list: {e}") from e
    tiers = doc.get("tiers") if isinstance(doc, dict) else None
    if not isinstance(tiers, dict) or not tiers:
        raise InventoryError(f"{path}: needs a non-empty mapping `tiers: {{<tier>: ...}}`")
    bad = [str(t) for t in tiers if not isinstance(t, str) or not TIER_NAME.match(t)]
    if bad:
        raise InventoryError(
            f"{path}: tier names must be 2-20 lowercase letters and underscores: {', '.join(bad)}"
        )
    return tuple(tiers)


def _values(tf_output: dict[str, Any]) -> dict[str, Any]:
    """``terraform output -json`` wraps each value as {"value", "type", "sensitive"}."""
    if not isinstance(tf_output, dict):
        raise InventoryError("terraform output is not a JSON object")
    missing = [name for name in CONSUMED_OUTPUTS if name not in tf_output]
    if missing:
        raise InventoryError(
            "terraform output lacks " + ", ".join(missing) + " (was `terraform apply` run in"
            " terraform/environments/<env> with this version of the kit?)"
        )
    out: dict[str, Any] = {}
    for name in CONSUMED_OUTPUTS:
        item = tf_output[name]
        if isinstance(item, dict) and "value" in item:
            if item.get("sensitive"):
                raise InventoryError(f"output {name} is sensitive; the inventory takes none")
            out[name] = item["value"]
        else:
            out[name] = item
    return out


def _bucket(v: dict[str, Any], output: str) -> str:
    """An optional bucket output: its name, or "" when the configuration made none (null)."""
    name = v[output]
    if name is None:
        return ""
    if not isinstance(name, str) or not BUCKET_NAME.match(name):
        raise InventoryError(f"output {output} is not a bucket name or null: {name!r}")
    return name


def _host_vars(
    vm: dict[str, Any], project: str, ssh_via: str, known_hosts: str | None
) -> dict[str, Any]:
    for key in ("name", "zone", "internal_ip"):
        if not vm.get(key):
            raise InventoryError(f"host {vm!r} has no {key}")
    name, zone = vm["name"], vm["zone"]
    hv: dict[str, Any] = {
        "ansible_host": vm["internal_ip"],
        "gce_zone": zone,
        "mlpipe_fqdn": f"{name}.{zone}.c.{project}.internal",
    }
    if vm.get("external_ip"):
        hv["mlpipe_public_ip"] = vm["external_ip"]
    disk = vm.get("data_disk")
    if disk is not None:
        device = disk.get("device_name") if isinstance(disk, dict) else None
        if not isinstance(device, str) or not DEVICE_NAME.match(device):
            raise InventoryError(
                f"host {name}: data_disk needs a device_name (a lowercase name of letters, digits"
                f" and hyphens, as in /dev/disk/by-id/google-<device_name>), not {device!r}"
            )
        hv["datadisk_device_name"] = device
    opts = [f"-o HostKeyAlias={name}", "-o StrictHostKeyChecking=accept-new"]
    if known_hosts:
        opts.append(f"-o UserKnownHostsFile={known_hosts}")
    if ssh_via == "iap":
        opts.insert(
            0,
            f'-o ProxyCommand="gcloud compute start-iap-tunnel {name} 22 --listen-on-stdin'
            f' --zone={zone} --project={project} --verbosity=warning"',
        )
    hv["ansible_ssh_common_args"] = " ".join(opts)
    return hv


def build_inventory(
    tf_output: dict[str, Any],
    *,
    ssh_user: str | None = None,
    ssh_key: str | None = None,
    ssh_via: str = "iap",
    known_hosts: str | None = None,
    groups: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Return the inventory as a dict ready for YAML (see the module docstring).

    ``groups`` are the tier names (default: those of tiers.yml)."""
    groups = load_groups() if groups is None else groups
    if ssh_via not in SSH_MODES:
        raise InventoryError(f"ssh_via must be one of {', '.join(SSH_MODES)}, not {ssh_via!r}")
    v = _values(tf_output)
    hosts = v["hosts"] or {}
    if not isinstance(hosts, dict):
        raise InventoryError("output hosts must map tier => list of VMs")
    unknown = sorted(set(hosts) - set(groups))
    if unknown:
        raise InventoryError(
            f"output hosts has tiers that tiers.yml does not list: {', '.join(unknown)}"
        )
    hosted_on = v["hosted_on"] or {}
    if not isinstance(hosted_on, dict):
        raise InventoryError("output hosted_on must map tier => tier whose VMs run it")
    for tier, host_tier in hosted_on.items():
        if tier not in groups or host_tier not in groups:
            raise InventoryError(
                f"output hosted_on: {tier} => {host_tier} names a tier tiers.yml does not list"
            )
        if hosts.get(tier):
            raise InventoryError(f"output hosted_on: {tier} has VMs of its own")
        if not hosts.get(host_tier):
            raise InventoryError(f"output hosted_on: {tier} => {host_tier}, which has no VMs")
    project = v["project_id"]

    children: dict[str, Any] = {}
    seen: set[str] = set()
    for group in groups:
        members: dict[str, Any] = {}
        if group in hosted_on:
            # The VMs of the host tier; their variables are set once, under that group.
            members = {vm["name"]: None for vm in hosts[hosted_on[group]]}
        else:
            for vm in hosts.get(group) or []:
                hv = _host_vars(vm, project, ssh_via, known_hosts)
                if vm["name"] in seen:
                    raise InventoryError(f"VM {vm['name']} appears in more than one tier")
                seen.add(vm["name"])
                members[vm["name"]] = hv
        children[group] = {"hosts": members} if members else {}

    all_vars: dict[str, Any] = {}
    if ssh_user:
        all_vars["ansible_user"] = ssh_user
    if ssh_key:
        all_vars["ansible_ssh_private_key_file"] = ssh_key
    all_vars.update(
        {
            "mlpipe_env": v["environment"],
            "mlpipe_ssh_via": ssh_via,
            "mlpipe_private_cidr": v["private_cidr"],
            "mlpipe_bucket_backups": v["bucket_backups"],
            "mlpipe_bucket_mlflow_artifacts": _bucket(v, "bucket_mlflow_artifacts"),
            "mlpipe_gcp_project": project,
            "mlpipe_gcp_region": v["region"],
            "mlpipe_gcp_network": v["network"],
            "mlpipe_gcp_service_accounts": dict(v["service_accounts"] or {}),
        }
    )
    return {"all": {"vars": all_vars, "children": children}}


def empty_groups(inventory: dict[str, Any]) -> list[str]:
    children = inventory["all"]["children"]
    return [g for g, c in children.items() if not c.get("hosts")]


def render(inventory: dict[str, Any]) -> str:
    env = inventory["all"]["vars"]["mlpipe_env"]
    head = (
        "---\n"
        f"# GENERATED by terraform/scripts/tf_inventory.py from the Terraform outputs of\n"
        f"# terraform/environments/{env}. Do not edit: `make provision` rewrites it.\n"
    )
    body = yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False, width=100)
    return head + body.replace(": null\n", ":\n")


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tf-output", default="-", help="`terraform output -json` file (- = stdin)")
    p.add_argument("--out", default="inventories/gcp/hosts.yml", help="inventory file to write")
    p.add_argument("--ssh-user", help="OS Login user name (ansible_user)")
    p.add_argument("--ssh-key", help="private key registered with OS Login")
    p.add_argument("--ssh-via", choices=SSH_MODES, default="iap")
    p.add_argument("--known-hosts", help="known_hosts file for the platform's VMs")
    p.add_argument("--tiers", type=Path, default=TIERS_FILE, help="the tier list (tiers.yml)")
    a = p.parse_args(argv)
    try:
        groups = load_groups(a.tiers)
        raw = sys.stdin.read() if a.tf_output == "-" else Path(a.tf_output).read_text()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise InventoryError(f"terraform output is not JSON: {e}") from e
        inv = build_inventory(
            data,
            ssh_user=a.ssh_user,
            ssh_key=a.ssh_key,
            ssh_via=a.ssh_via,
            known_hosts=a.known_hosts,
            groups=groups,
        )
    except (InventoryError, OSError) as e:
        print(f"tf_inventory: error: {e}", file=sys.stderr)
        return 1
    write_atomic(Path(a.out), render(inv))
    names = {h for c in inv["all"]["children"].values() for h in c.get("hosts", {})}
    n = len(names)
    print(f"tf_inventory: wrote {a.out} ({n} hosts)")
    for g in empty_groups(inv):
        print(f"tf_inventory: warning: group {g} has no hosts", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
