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


BREAKAGES = {
    "variable_without_description": (
        tfcheck.check_variables,
        lambda r: _edit(
            r / "modules/storage/variables.tf",
            '  description = "Labels on every bucket (each adds purpose = its purpose)."\n',
            "",
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
            'output "backups_url" {\n  description = "x"\n'
            '  value = google_storage_bucket.bucket["backups"].url\n}',
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
