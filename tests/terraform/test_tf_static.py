"""The Terraform tree, parsed with python-hcl2, against the kit's rules (tfcheck.py)."""

from __future__ import annotations

import re

import pytest
import tfcheck


@pytest.mark.parametrize("check", tfcheck.ALL_CHECKS, ids=lambda c: c.__name__)
def test_terraform_tree_passes(check, tf_root):
    assert check(tf_root) == []


def test_every_tf_file_parses(tf_root):
    dirs = tfcheck.load(tf_root)
    assert {
        "modules/network",
        "modules/compute",
        "modules/storage",
        "environments/prod",
        "bootstrap",
    } <= set(dirs)


def test_environment_outputs_are_exactly_what_the_generator_reads(tf_root, tf_inventory):
    outputs = set(tfcheck.load(tf_root)["environments/prod"].labelled("output"))
    assert outputs == set(tf_inventory.CONSUMED_OUTPUTS)
    src = (tf_root / "scripts" / "tf_inventory.py").read_text()
    for name in tf_inventory.CONSUMED_OUTPUTS:
        assert f'v["{name}"]' in src, f"generator never uses output {name}"


def test_tiers_match_inventory_groups(tf_root, tf_inventory):
    env = tfcheck.load(tf_root)["environments/prod"]
    tiers = set(env.labelled("variable")["tiers"]["default"])
    assert tiers == set(tf_inventory.GROUPS)
    assert env.labelled("variable")["tiers"]["default"]["postgresql"]["count"] == 0


def test_internal_rules_are_least_privilege(tf_root):
    rules = tfcheck.load(tf_root)["modules/network"].locals()["service_rules"]
    pg = rules["postgresql"]
    assert [tfcheck.unq(s) for s in pg["sources"]] == ["mlflow"]
    for name, r in rules.items():
        targets = {tfcheck.unq(t) for t in r["targets"]}
        assert "web" not in targets, f"{name}: web gets no internal service traffic"


def test_only_web_has_external_ip(tf_root):
    compute = tfcheck.load(tf_root)["modules/compute"]
    res = compute.resources("google_compute_instance")
    private_nic = res[("google_compute_instance", "private")]["network_interface"][0]
    public_nic = res[("google_compute_instance", "public")]["network_interface"][0]
    assert "access_config" not in private_nic
    assert "access_config" in public_nic
    assert re.search(r'v\.tier != \\?"web', str(compute.locals()["private_instances"]))


def test_checkov_skips_are_few_and_known(tf_root):
    text = "\n".join(d.text() for d in tfcheck.load(tf_root).values())
    skipped = set(re.findall(r"checkov:skip=([A-Z0-9_]+)", text))
    assert skipped <= {"CKV_GCP_106", "CKV_GCP_37", "CKV_GCP_38", "CKV_GCP_40", "CKV_GCP_62"}


def test_tftest_files_exist_for_a_mirror_run(tf_root):
    for d in ("modules/network", "modules/compute", "modules/storage", "environments/prod"):
        tests = list((tf_root / d / "tests").glob("*.tftest.hcl"))
        assert tests, d
        assert "mock_provider" in tests[0].read_text()
