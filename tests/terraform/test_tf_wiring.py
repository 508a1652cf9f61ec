"""What terraform/ builds from tiers.yml, evaluated by Terraform itself (tfeval.Harness).

The environment's locals and its call of modules/tiers run as written; the arguments
it passes to the network, compute and storage modules are then fed to harnesses of
those modules, whose locals, ``for_each`` and attribute expressions (read from the
.tf files with python-hcl2) Terraform evaluates per resource instance. Only the
provider's computed values (service-account emails, addresses) are stand-ins.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import tfeval
import yaml
from tfpaths import TF_ROOT, TOP

pytestmark = pytest.mark.skipif(
    tfeval.TERRAFORM is None, reason="terraform is not on PATH (install Terraform >= 1.7)"
)

TIERS = yaml.safe_load((TOP / "tiers.yml").read_text())["tiers"]
PROJECT = "mlpipe-demo-123"
SUBNET = ipaddress.IPv4Network("10.42.0.0/24")  # the subnet_cidr the network harness gets
ENV_INPUTS = {"project_id": PROJECT, "region": "test-region1", "zones": ["test-region1-a"]}


def tag(tier: str) -> str:
    return "mlpipe-" + tier.replace("_", "-")


def public_ports(tier: str) -> set[int]:
    return {p["port"] for p in TIERS[tier].get("ports", []) if p.get("public")}


class Platform:
    """The environment, then each module with the arguments the environment passes."""

    def __init__(self, work: Path, env_dir: Path = TF_ROOT / "environments" / "prod") -> None:
        self.work = work
        self.env = tfeval.Harness(env_dir, work / "env")

    def build(self, **env_inputs: Any) -> dict[str, Any]:
        e = self.env
        # Service accounts exist for the tiers with VMs; their emails are the provider's.
        network = {"subnet_self_link": "subnet", "tier_tags": {}}
        e.fakes = {
            "module.compute": {"service_accounts": {t: f"{t}@sa" for t in TIERS}},
            "module.network": network,
        }
        first = e.evaluate({**ENV_INPUTS, **env_inputs}, {"groups": "module.tiers.vm_groups"})
        with_vms = [t for t, g in first["groups"].items() if g["count"] > 0]
        e.fakes["module.compute"] = {"service_accounts": {t: f"{t}@sa" for t in with_vms}}
        got = e.evaluate({**ENV_INPUTS, **env_inputs}, {"hosted_on": "module.tiers.hosted_on"})
        module_args = {m: got[f"args_{m}"] for m in ("network", "compute", "storage")}
        self.hosted_on = got["hosted_on"]
        self.network = self._network(module_args["network"])
        self.compute = self._compute(module_args["compute"], self.network["tier_tags"])
        self.storage = self._storage(module_args["storage"])
        self.storage_roles = self.storage["roles"]
        return module_args

    def _network(self, args: dict[str, Any]) -> dict[str, Any]:
        h = tfeval.Harness(TF_ROOT / "modules" / "network", self.work / "network")
        out: dict[str, Any] = {"tier_tags": "local.tier_tags"}
        for name in ("public", "service"):
            body = h.resource("google_compute_firewall", name)
            out[name] = h.per_instance(
                body["for_each"],
                {
                    "ports": body["allow"][0]["ports"],
                    "ranges": body.get("source_ranges") or "${null}",
                    "sources": body.get("source_tags") or "${null}",
                    "targets": body["target_tags"],
                },
            )
        ssh = h.resource("google_compute_firewall", "ssh")
        out["ssh"] = tfeval.expr(ssh["source_ranges"])
        out["ssh_targets"] = tfeval.expr(ssh["target_tags"])
        out["ssh_ports"] = tfeval.expr(ssh["allow"][0]["ports"])
        inputs = {k: v for k, v in args.items() if v is not None}
        return h.evaluate({**inputs, "subnet_cidr": str(SUBNET)}, out)

    def _compute(self, args: dict[str, Any], tier_tags: dict[str, str]) -> dict[str, Any]:
        h = tfeval.Harness(TF_ROOT / "modules" / "compute", self.work / "compute")
        inputs = {
            **{k: v for k, v in args.items() if v is not None},
            "subnet_self_link": "projects/p/regions/r/subnetworks/s",
            "tier_tags": tier_tags,
        }
        h.fakes = {"data.google_compute_zones.available": [{"names": ["test-region1-a"]}]}
        keys = h.evaluate(inputs, {"k": "keys(local.instances)"})["k"]
        h.fakes.update(
            {
                "google_compute_address.public": {k: {"address": f"ip-{k}"} for k in keys},
                "google_compute_disk.data": {k: {"self_link": f"disk-{k}"} for k in keys},
                "google_service_account.tier": {t: {"email": f"{t}@sa"} for t in inputs["tiers"]},
            }
        )
        vm = h.resource("google_compute_instance", "vm")
        nic = vm["network_interface"][0]
        assert "access_config" not in nic, "a static access_config gives every VM a public IP"
        access = tfeval.dynamic(nic, "access_config")
        return h.evaluate(
            inputs,
            {
                "vms": h.per_instance(
                    vm["for_each"],
                    {
                        "name": vm["name"],
                        "tags": vm["tags"],
                        "access": access["for_each"],
                        "oslogin": "${" + tfeval.expr(vm["metadata"]) + '["enable-oslogin"]}',
                        "secure_boot": vm["shielded_instance_config"][0]["enable_secure_boot"],
                        "ip_forward": vm["can_ip_forward"],
                        "sa": vm["service_account"][0]["email"],
                        "protect": vm["deletion_protection"],
                    },
                ),
                "addresses": tfeval.expr(
                    h.resource("google_compute_address", "public")["for_each"]
                ),
            },
        ) | {"resources": h.resources("google_compute_instance")}

    def _storage(self, args: dict[str, Any]) -> dict[str, Any]:
        h = tfeval.Harness(TF_ROOT / "modules" / "storage", self.work / "storage")
        bucket = h.resource("google_storage_bucket", "bucket")
        grant = h.resource("google_storage_bucket_iam_member", "member")
        role = h.resource("google_project_iam_custom_role", "role")
        h.fakes = {
            "google_storage_bucket.bucket": {k: {"name": k} for k in args["buckets"]},
            # the provider's name of a custom role: projects/<p>/roles/<role_id>
            "google_project_iam_custom_role.role": {
                k: {"name": f"custom-role:{k}"} for k in args.get("custom_roles") or {}
            },
        }
        return h.evaluate(
            {k: v for k, v in args.items() if v is not None},
            {
                "buckets": h.per_instance(
                    bucket["for_each"],
                    {
                        "name": bucket["name"],
                        "pap": bucket["public_access_prevention"],
                        "versioned": bucket["versioning"][0]["enabled"],
                        "rules": tfeval.dynamic(bucket, "lifecycle_rule")["for_each"],
                    },
                ),
                "grants": h.per_instance(
                    grant["for_each"],
                    {a: grant[a] for a in ("bucket", "role", "member")},
                ),
                "roles": h.per_instance(
                    role["for_each"],
                    {a: role[a] for a in ("project", "role_id", "title", "permissions")},
                ),
            },
        )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    p = Platform(tmp_path_factory.mktemp("platform"))
    p.build()
    return p


def test_every_tier_with_a_count_gets_its_vm_group(platform: Platform) -> None:
    vms = platform.compute["vms"]
    expected = {
        f"{t}-{i}": f"mlpipe-{t.replace('_', '-')}-{i}"
        for t, c in TIERS.items()
        for i in range(c["gcp"]["count"])
    }
    assert {k: v["name"] for k, v in vms.items()} == expected
    assert platform.compute["resources"] == ["vm"], "one instance resource for every tier"


def test_only_public_tiers_get_an_external_ip(platform: Platform) -> None:
    vms = platform.compute["vms"]
    public = {k for k, v in vms.items() if v["access"]}
    assert public == {k for k in vms if public_ports(k.rsplit("-", 1)[0])}
    assert public == {"web-0"}
    assert all(len(v["access"]) == 1 for k, v in vms.items() if k in public)
    assert set(platform.compute["addresses"]) == public


def test_every_vm_is_locked_down(platform: Platform) -> None:
    for k, v in platform.compute["vms"].items():
        tier = k.rsplit("-", 1)[0]
        assert v["oslogin"] == "TRUE" and v["secure_boot"] is True, k
        assert v["ip_forward"] is False, k
        assert v["sa"] == f"{tier}@sa", f"{k} runs as its tier's own service account"
        assert v["protect"] is False, "deletion_protection is off by default"


def test_hosted_tiers_ride_on_their_hosts_vms(platform: Platform) -> None:
    assert platform.hosted_on == {
        t: c["hosted_on"] for t, c in TIERS.items() if c.get("hosted_on") and not c["gcp"]["count"]
    }
    assert platform.compute["vms"]["mlflow-0"]["tags"] == [tag("mlflow"), tag("postgresql")]
    assert platform.compute["vms"]["ngas-0"]["tags"] == [tag("ngas")]


def test_internet_reaches_only_the_public_ports_of_public_tiers(platform: Platform) -> None:
    rules = platform.network["public"]
    assert rules, "no public firewall rule"
    for rule in rules.values():
        assert rule["ranges"] == ["0.0.0.0/0"]
    opened = {(t, int(p)) for r in rules.values() for t in r["targets"] for p in r["ports"]}
    assert opened == {(tag(t), p) for t in TIERS for p in public_ports(t)}
    assert platform.network["ssh"] == ["35.235.240.0/20"], "SSH only through IAP by default"


def test_internal_rules_open_exactly_the_listed_ports(platform: Platform) -> None:
    rules = platform.network["service"]
    got = {
        (t, int(p), tuple(sorted(r["sources"])))
        for r in rules.values()
        for t in r["targets"]
        for p in r["ports"]
    }
    want = {
        (tag(t), p["port"], tuple(sorted(tag(s) for s in p["from"])))
        for t, c in TIERS.items()
        for p in c.get("ports", [])
        if not p.get("public")
    }
    assert got == want
    assert all(r["ranges"] is None for r in rules.values()), "internal rules select by tag"


def reaches(platform: Platform, source: str, target: str, port: int) -> bool:
    """Whether the GCP firewall lets a VM of tier ``source`` (by its network tags and its
    address in the subnet) connect to a VM of tier ``target`` on TCP ``port``."""
    vms = platform.compute["vms"]
    src_tags = set(vms[f"{source}-0"]["tags"])
    dst_tags = set(vms[f"{target}-0"]["tags"])
    net = platform.network
    # (source tags, source ranges, target tags, ports) of every internal ingress rule
    rules: list[tuple[list[str], list[str], list[str], list[str]]] = [
        (r["sources"], [], r["targets"], r["ports"]) for r in net["service"].values()
    ]
    rules.append(([], net["ssh"], net["ssh_targets"], net["ssh_ports"]))
    for tags, ranges, targets, ports in rules:
        if str(port) not in ports or not dst_tags & set(targets):
            continue
        if src_tags & set(tags or []):
            return True
        if any(SUBNET.subnet_of(ipaddress.IPv4Network(c)) for c in ranges or []):
            return True
    return False


# Connections the platform makes between tiers, as the roles configure them (what
# tiers.yml's `from` lists must let through on GCP), and some it must not get.
FLOWS = [
    # the Slurm login node on slurm_ctl: the DALiuGE workers submit over SSH
    # (docs/slurm.md, [slurm] host/port = slurm_login_port, 22)
    ("dlg_worker", "slurm_ctl", 22, True),
    ("slurm_node", "slurm_ctl", 6817, True),
    ("slurm_ctl", "slurm_node", 6818, True),
    ("mlflow", "postgresql", 5432, True),
    ("dlg_worker", "ngas", 7777, True),
    ("web", "slurm_ctl", 22, False),
    ("slurm_node", "slurm_ctl", 22, False),
    ("dlg_worker", "slurm_node", 22, False),
    ("web", "postgresql", 5432, False),
]


@pytest.mark.parametrize(("source", "target", "port", "open_"), FLOWS)
def test_the_firewall_carries_the_platforms_connections(
    platform: Platform, source: str, target: str, port: int, open_: bool
) -> None:
    src, dst = (platform.hosted_on.get(t, t) for t in (source, target))
    assert reaches(platform, src, dst, port) is open_, (
        f"{source} -> {target} tcp/{port} should be {'open' if open_ else 'closed'} on GCP"
    )


def test_buckets_are_private_versioned_and_granted_per_tier(platform: Platform) -> None:
    b = platform.storage["buckets"]
    assert {k: v["name"] for k, v in b.items()} == {"backups": f"{PROJECT}-mlpipe-backups"}
    assert all(v["pap"] == "enforced" and v["versioned"] is True and v["rules"] for v in b.values())
    grants = {(g["bucket"], g["role"], g["member"]) for g in platform.storage["grants"].values()}
    sa = "serviceAccount:{}@sa".format
    assert grants == {
        ("backups", "roles/storage.objectCreator", sa("mlflow")),
        ("backups", "roles/storage.objectViewer", sa("mlflow")),
        ("backups", "roles/storage.objectCreator", sa("ngas")),
        ("backups", "roles/storage.objectViewer", sa("ngas")),
    }


def test_no_custom_role_and_no_artifact_bucket_while_artifacts_are_on_ngas(
    platform: Platform,
) -> None:
    assert platform.storage_roles == {}
    assert "mlflow-artifacts" not in platform.storage["buckets"]


def test_a_gcs_artifact_store_gets_its_bucket_and_role_on_it_only(tmp_path: Path) -> None:
    p = Platform(tmp_path)
    p.build(mlflow_artifact_store="gcs")
    b = p.storage["buckets"]["mlflow-artifacts"]
    assert b["name"] == f"{PROJECT}-mlpipe-mlflow-artifacts"
    assert b["pap"] == "enforced" and b["versioned"] is True and b["rules"]
    role = p.storage_roles["mlflowArtifacts"]
    assert role["project"] == PROJECT and role["role_id"] == "mlpipe_mlflowArtifacts"
    assert all(perm.startswith("storage.objects.") for perm in role["permissions"])
    grants = {(g["bucket"], g["role"], g["member"]) for g in p.storage["grants"].values()}
    custom = {g for g in grants if g[1].startswith("custom-role:")}
    assert custom == {
        ("mlflow-artifacts", "custom-role:mlflowArtifacts", "serviceAccount:mlflow@sa")
    }
    # the backups grants are unchanged, and nothing else touches the new bucket
    assert {g for g in grants if g[0] == "mlflow-artifacts"} == custom


def test_an_unknown_artifact_store_is_refused(tmp_path: Path) -> None:
    p = Platform(tmp_path)
    with pytest.raises(tfeval.TerraformError, match="mlflow_artifact_store must be"):
        p.build(mlflow_artifact_store="s3")


def test_tier_overrides_scale_and_move_the_database(tmp_path: Path) -> None:
    p = Platform(tmp_path)
    p.build(tier_overrides={"dlg_worker": {"count": 4}, "postgresql": {"count": 1}})
    vms = p.compute["vms"]
    assert sorted(k for k in vms if k.startswith("dlg_worker-")) == [
        f"dlg_worker-{i}" for i in range(4)
    ]
    assert p.hosted_on == {}
    assert vms["postgresql-0"]["tags"] == [tag("postgresql")]
    assert vms["mlflow-0"]["tags"] == [tag("mlflow")]
    writers = {
        g["member"]
        for g in p.storage["grants"].values()
        if g["role"] == "roles/storage.objectCreator"
    }
    assert writers == {"serviceAccount:postgresql@sa", "serviceAccount:ngas@sa"}


def test_deletion_protection_covers_the_stateful_tiers(tmp_path: Path) -> None:
    p = Platform(tmp_path)
    p.build(deletion_protection=True)
    protected = {k.rsplit("-", 1)[0] for k, v in p.compute["vms"].items() if v["protect"]}
    assert protected == {
        t for t, c in TIERS.items() if c["gcp"].get("stateful") and c["gcp"]["count"]
    }


def test_unknown_tier_in_overrides_is_refused(tmp_path: Path) -> None:
    with pytest.raises(tfeval.TerraformError, match="tiers.yml does not list: bastion"):
        Platform(tmp_path).build(tier_overrides={"bastion": {"count": 1}})


def test_a_public_port_beyond_80_443_is_refused(tmp_path: Path) -> None:
    h = tfeval.Harness(TF_ROOT / "modules" / "network", tmp_path)
    inputs = {
        "project_id": PROJECT,
        "region": "test-region1",
        "name": "mlpipe",
        "subnet_cidr": "10.42.0.0/24",
        "tiers": ["web"],
        "service_rules": {},
    }
    assert h.evaluate({**inputs, "public_ports": {"web": [443]}}, {"t": "local.public_rules"})
    with pytest.raises(tfeval.TerraformError, match="public_ports may only contain 80 and 443"):
        h.evaluate({**inputs, "public_ports": {"web": [443, 8080]}}, {"t": "local.public_rules"})


def test_the_minimal_example_builds_every_tier_once(tmp_path: Path) -> None:
    p = Platform(tmp_path, TF_ROOT / "examples" / "minimal")
    p.build()
    names = {k.rsplit("-", 1)[0] for k in p.compute["vms"]}
    assert names == {t for t, c in TIERS.items() if c["gcp"]["count"]}
    assert all(k.endswith("-0") for k in p.compute["vms"])
