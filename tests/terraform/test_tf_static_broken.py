"""The static checks must fail on deliberately broken copies of terraform/."""

from __future__ import annotations

from pathlib import Path

import pytest
import tfcheck


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"fixture drifted: {old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


EXTRA_PUBLIC_RULE = """
resource "google_compute_firewall" "mlflow_public" {
  project       = var.project_id
  name          = "oops"
  network       = google_compute_network.vpc.id
  source_ranges = ["0.0.0.0/0"]
  target_tags   = [local.tier_tags["mlflow"]]
  allow {
    protocol = "tcp"
    ports    = ["5000"]
  }
}
"""

BREAKAGES = {
    "ssh_open_to_world": (
        tfcheck.check_firewall,
        lambda r: _edit(
            r / "modules/network/variables.tf",
            'default     = ["35.235.240.0/20"]',
            'default     = ["0.0.0.0/0"]',
        ),
    ),
    "ssh_literal_range": (
        tfcheck.check_firewall,
        lambda r: _edit(
            r / "modules/network/main.tf",
            "source_ranges = var.ssh_source_ranges",
            'source_ranges = ["10.0.0.0/8"]',
        ),
    ),
    "mlflow_public": (
        tfcheck.check_firewall,
        lambda r: _append(r / "modules/network/main.tf", EXTRA_PUBLIC_RULE),
    ),
    "web_port_8080": (
        tfcheck.check_firewall,
        lambda r: _edit(
            r / "modules/network/variables.tf",
            "default     = [80, 443]",
            "default     = [80, 443, 8080]",
        ),
    ),
    "unused_port": (
        tfcheck.check_firewall,
        lambda r: _edit(
            r / "modules/network/main.tf", 'ports   = ["5432"]', 'ports   = ["5432", "3306"]'
        ),
    ),
    "internal_rule_by_range": (
        tfcheck.check_firewall,
        lambda r: _edit(
            r / "modules/network/main.tf",
            "source_tags = each.value.source_tags",
            'source_ranges = ["10.0.0.0/8"]',
        ),
    ),
    "public_ip_on_private_tier": (
        tfcheck.check_public_ips,
        lambda r: _edit(
            r / "modules/compute/main.tf",
            "  network_interface {\n    subnetwork = var.subnet_self_link\n  }",
            "  network_interface {\n    subnetwork = var.subnet_self_link\n"
            "    access_config {}\n  }",
        ),
    ),
    "bucket_public_access_inherited": (
        tfcheck.check_buckets,
        lambda r: _edit(
            r / "modules/storage/main.tf",
            'public_access_prevention    = "enforced"',
            'public_access_prevention    = "inherited"',
        ),
    ),
    "bucket_unversioned": (
        tfcheck.check_buckets,
        lambda r: _edit(r / "modules/storage/main.tf", "enabled = true", "enabled = false"),
    ),
    "bucket_acl_mode": (
        tfcheck.check_buckets,
        lambda r: _edit(
            r / "bootstrap/main.tf",
            "uniform_bucket_level_access = true",
            "uniform_bucket_level_access = false",
        ),
    ),
    "variable_without_description": (
        tfcheck.check_variables,
        lambda r: _edit(
            r / "modules/storage/variables.tf", '  description = "Labels on both buckets."\n', ""
        ),
    ),
    "unused_variable": (
        tfcheck.check_variables,
        lambda r: _append(
            r / "modules/compute/variables.tf",
            'variable "spare" {\n  description = "x"\n  type = string\n}',
        ),
    ),
    "untyped_variable": (
        tfcheck.check_variables,
        lambda r: _edit(
            r / "environments/prod/variables.tf",
            "  type        = bool\n  default     = true",
            "  default     = true",
        ),
    ),
    "hard_coded_region": (
        tfcheck.check_no_hardcoded_location,
        lambda r: _edit(
            r / "environments/prod/providers.tf", "region  = var.region", 'region  = "europe-west4"'
        ),
    ),
    "hard_coded_project": (
        tfcheck.check_no_hardcoded_location,
        lambda r: _edit(
            r / "modules/storage/main.tf",
            "project                     = var.project_id",
            'project                     = "my-lab-project"',
        ),
    ),
    "region_default": (
        tfcheck.check_no_hardcoded_location,
        lambda r: _edit(
            r / "bootstrap/variables.tf",
            'type        = string\n\n  validation {\n    condition     = can(regex("^[a-z]+-',
            'type        = string\n  default     = "us-central1"\n\n'
            '  validation {\n    condition     = can(regex("^[a-z]+-',
        ),
    ),
    "unconsumed_module_output": (
        tfcheck.check_module_outputs_consumed,
        lambda r: _append(
            r / "modules/storage/outputs.tf",
            'output "raw_url" {\n  description = "x"\n  value = google_storage_bucket.raw.url\n}',
        ),
    ),
    "no_oslogin": (
        tfcheck.check_instances,
        lambda r: _edit(
            r / "modules/compute/main.tf",
            'enable-oslogin         = "TRUE"',
            'enable-oslogin         = "FALSE"',
        ),
    ),
    "no_secure_boot": (
        tfcheck.check_instances,
        lambda r: _edit(
            r / "modules/compute/main.tf",
            "enable_secure_boot          = true",
            "enable_secure_boot          = false",
        ),
    ),
    "skip_without_reason": (
        tfcheck.check_checkov_skips,
        lambda r: _edit(
            r / "modules/network/main.tf",
            "#checkov:skip=CKV_GCP_106:Port 80",
            "#checkov:skip=CKV_GCP_106\n  # Port 80",
        ),
    ),
    "module_readme_missing": (
        tfcheck.check_structure,
        lambda r: (r / "modules/storage/README.md").unlink(),
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_check_catches_breakage(name, tf_copy):
    check, breaker = BREAKAGES[name]
    assert check(tf_copy) == [], "the unbroken copy must pass"
    breaker(tf_copy)
    problems = check(tf_copy)
    assert problems, f"{check.__name__} did not notice {name}"
