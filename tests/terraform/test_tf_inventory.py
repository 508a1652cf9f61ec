"""terraform/scripts/tf_inventory.py on a constructed `terraform output -json`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tfpaths import TF_ROOT, TOP

GEN = TF_ROOT / "scripts" / "tf_inventory.py"
VENV_BIN = Path(sys.executable).parent


def _hosts(inv: dict, group: str) -> dict:
    return inv["all"]["children"][group].get("hosts") or {}


def test_groups_and_hosts(tf_inventory, tf_output):
    inv = tf_inventory.build_inventory(tf_output, ssh_user="alice_example_org")
    assert list(inv["all"]["children"]) == list(tf_inventory.load_groups())
    assert list(_hosts(inv, "dlg_worker")) == ["mlpipe-dlg-worker-0", "mlpipe-dlg-worker-1"]
    mlflow = _hosts(inv, "mlflow")["mlpipe-mlflow-0"]
    assert mlflow["ansible_host"] == "10.42.0.2"
    assert mlflow["mlpipe_fqdn"] == "mlpipe-mlflow-0.test-region1-a.c.mlpipe-demo-123.internal"
    assert "mlpipe_public_ip" not in mlflow
    assert _hosts(inv, "web")["mlpipe-web-0"]["mlpipe_public_ip"] == "203.0.113.10"
    assert _hosts(inv, "web")["mlpipe-web-0"]["ansible_host"] == "10.42.0.10"


def test_data_disks_give_the_device_name(tf_inventory, tf_output):
    inv = tf_inventory.build_inventory(tf_output)
    assert _hosts(inv, "ngas")["mlpipe-ngas-0"]["datadisk_device_name"] == "data"
    assert _hosts(inv, "mlflow")["mlpipe-mlflow-0"]["datadisk_device_name"] == "data"
    # no data disk (data_disk null, or an older output without the key): no variable,
    # and the datadisk role does nothing there
    assert "datadisk_device_name" not in _hosts(inv, "web")["mlpipe-web-0"]
    del tf_output["hosts"]["value"]["dlg_worker"][0]["data_disk"]
    inv = tf_inventory.build_inventory(tf_output)
    assert "datadisk_device_name" not in _hosts(inv, "dlg_worker")["mlpipe-dlg-worker-0"]


def test_postgresql_defaults_to_the_mlflow_hosts(tf_inventory, tf_output):
    inv = tf_inventory.build_inventory(tf_output)
    assert _hosts(inv, "postgresql") == {"mlpipe-mlflow-0": None}


def test_separate_postgresql_tier(tf_inventory, tf_output):
    db = dict(tf_output["hosts"]["value"]["mlflow"][0], name="mlpipe-postgresql-0")
    db["internal_ip"] = "10.42.0.20"
    tf_output["hosts"]["value"]["postgresql"] = [db]
    tf_output["hosted_on"]["value"] = {}
    inv = tf_inventory.build_inventory(tf_output)
    assert list(_hosts(inv, "postgresql")) == ["mlpipe-postgresql-0"]
    assert _hosts(inv, "postgresql")["mlpipe-postgresql-0"]["ansible_host"] == "10.42.0.20"
    assert "mlpipe-mlflow-0" not in _hosts(inv, "postgresql")


def test_site_variables(tf_inventory, tf_output):
    v = tf_inventory.build_inventory(tf_output, ssh_user="u", ssh_key="/k")["all"]["vars"]
    assert v["ansible_user"] == "u"
    assert v["ansible_ssh_private_key_file"] == "/k"
    assert v["mlpipe_private_cidr"] == "10.42.0.0/24"
    assert v["mlpipe_bucket_backups"] == "mlpipe-demo-123-mlpipe-backups"
    assert v["mlpipe_bucket_mlflow_artifacts"] == ""  # null: artifacts on NGAS
    assert v["mlpipe_gcp_project"] == "mlpipe-demo-123"
    assert v["mlpipe_env"] == "prod"
    assert v["mlpipe_gcp_service_accounts"]["ngas"].startswith("mlpipe-ngas@")


def test_mlflow_artifact_bucket_when_terraform_made_one(tf_inventory, tf_output):
    tf_output["bucket_mlflow_artifacts"]["value"] = "mlpipe-demo-123-mlpipe-mlflow-artifacts"
    v = tf_inventory.build_inventory(tf_output)["all"]["vars"]
    assert v["mlpipe_bucket_mlflow_artifacts"] == "mlpipe-demo-123-mlpipe-mlflow-artifacts"


def test_iap_proxycommand_per_host(tf_inventory, tf_output):
    inv = tf_inventory.build_inventory(tf_output, known_hosts="/kh")
    args = _hosts(inv, "dlg_worker")["mlpipe-dlg-worker-1"]["ansible_ssh_common_args"]
    assert (
        'ProxyCommand="gcloud compute start-iap-tunnel mlpipe-dlg-worker-1 22 --listen-on-stdin'
        " --zone=test-region1-b --project=mlpipe-demo-123" in args
    )
    assert "HostKeyAlias=mlpipe-dlg-worker-1" in args
    assert "UserKnownHostsFile=/kh" in args


def test_direct_mode_has_no_proxy(tf_inventory, tf_output):
    inv = tf_inventory.build_inventory(tf_output, ssh_via="direct")
    for group in inv["all"]["children"]:
        for hv in _hosts(inv, group).values():
            assert hv is None or "ProxyCommand" not in hv["ansible_ssh_common_args"]


def test_empty_tier_gives_empty_group(tf_inventory, tf_output):
    del tf_output["hosts"]["value"]["slurm_node"]
    inv = tf_inventory.build_inventory(tf_output)
    assert _hosts(inv, "slurm_node") == {}
    assert tf_inventory.empty_groups(inv) == ["slurm_node"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.pop("bucket_backups"), "lacks bucket_backups"),
        (lambda o: o["bucket_mlflow_artifacts"].update(value="Not A Bucket"), "not a bucket name"),
        (lambda o: o["hosts"]["value"].update(bastion=[]), "tiers.yml does not list: bastion"),
        (lambda o: o["hosted_on"].update(value={"postgresql": "slurm_gpu"}), "does not list"),
        (lambda o: o["hosted_on"].update(value={"web": "mlflow"}), "web has VMs of its own"),
        (lambda o: o["hosts"]["value"].pop("mlflow"), "mlflow, which has no VMs"),
        (lambda o: o["hosted_on"].update(value=["postgresql"]), "must map tier"),
        (lambda o: o["private_cidr"].update(sensitive=True), "sensitive"),
        (lambda o: o["hosts"]["value"]["ngas"][0].pop("internal_ip"), "no internal_ip"),
        (
            lambda o: o["hosts"]["value"]["ngas"][0]["data_disk"].update(device_name="Data 1"),
            "mlpipe-ngas-0: data_disk needs a device_name",
        ),
        (
            lambda o: o["hosts"]["value"]["ngas"][0].update(data_disk={"size_gb": 500}),
            "needs a device_name",
        ),
        (
            lambda o: o["hosts"]["value"]["ngas"].append(o["hosts"]["value"]["web"][0]),
            "more than one tier",
        ),
    ],
)
def test_bad_outputs_are_refused(tf_inventory, tf_output, mutate, message):
    mutate(tf_output)
    with pytest.raises(tf_inventory.InventoryError, match=message):
        tf_inventory.build_inventory(tf_output)


def test_groups_follow_the_tier_list(tf_inventory, tf_output, tmp_path):
    tiers = tmp_path / "tiers.yml"
    tiers.write_text("tiers:\n  web: {}\n  mlflow: {}\n  ngas: {}\n  postgresql: {}\n")
    del tf_output["hosts"]["value"]["dlg_head"]
    del tf_output["hosts"]["value"]["dlg_worker"]
    del tf_output["hosts"]["value"]["slurm_ctl"]
    del tf_output["hosts"]["value"]["slurm_node"]
    inv = tf_inventory.build_inventory(tf_output, groups=tf_inventory.load_groups(tiers))
    assert list(inv["all"]["children"]) == ["web", "mlflow", "ngas", "postgresql"]
    assert _hosts(inv, "postgresql") == {"mlpipe-mlflow-0": None}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tiers: []\n", "non-empty mapping"),
        ("[unclosed\n", "cannot read the tier list"),
        ("tiers:\n  Web: {}\n", "lowercase letters and underscores: Web"),
    ],
)
def test_bad_tier_list_is_refused(tf_inventory, tmp_path, text, message):
    tiers = tmp_path / "tiers.yml"
    tiers.write_text(text)
    with pytest.raises(tf_inventory.InventoryError, match=message):
        tf_inventory.load_groups(tiers)


def test_bad_ssh_mode(tf_inventory, tf_output):
    with pytest.raises(tf_inventory.InventoryError, match="ssh_via"):
        tf_inventory.build_inventory(tf_output, ssh_via="telnet")


def test_cli_writes_a_lint_clean_inventory_ansible_reads(tmp_path, tf_output):
    src = tmp_path / "out.json"
    src.write_text(json.dumps(tf_output))
    out = tmp_path / "gcp" / "hosts.yml"
    r = subprocess.run(
        [sys.executable, str(GEN), "--tf-output", str(src), "--out", str(out), "--ssh-user", "u"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "9 hosts" in r.stdout
    text = out.read_text()
    assert text.startswith("---\n# GENERATED")
    assert yaml.safe_load(text)["all"]["vars"]["ansible_user"] == "u"
    yamllint = shutil.which("yamllint", path=str(VENV_BIN))
    if yamllint:
        lint = subprocess.run(
            [yamllint, "-c", str(TOP / ".yamllint"), "-s", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout
    ai = shutil.which("ansible-inventory", path=str(VENV_BIN))
    if not ai:
        pytest.skip("ansible-inventory not installed")
    r = subprocess.run(
        [ai, "-i", str(out), "--list"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert listed["postgresql"]["hosts"] == ["mlpipe-mlflow-0"]
    assert sorted(listed["slurm_node"]["hosts"]) == ["mlpipe-slurm-node-0", "mlpipe-slurm-node-1"]
    web = listed["_meta"]["hostvars"]["mlpipe-web-0"]
    assert web["ansible_host"] == "10.42.0.10"
    assert web["mlpipe_bucket_backups"] == "mlpipe-demo-123-mlpipe-backups"
    assert "datadisk_device_name" not in web
    assert listed["_meta"]["hostvars"]["mlpipe-ngas-0"]["datadisk_device_name"] == "data"


def test_cli_rejects_garbage(tmp_path):
    src = tmp_path / "out.json"
    src.write_text("Error: no state")
    out = tmp_path / "hosts.yml"
    r = subprocess.run(
        [sys.executable, str(GEN), "--tf-output", str(src), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 1
    assert "not JSON" in r.stderr
    assert not out.exists()
