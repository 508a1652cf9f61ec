"""The README says what is there: its tier table agrees with tiers.yml, its targets exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

TOP = Path(__file__).resolve().parents[2]
README = (TOP / "README.md").read_text()


def _service_table() -> list[dict[str, str]]:
    lines = README[README.index("| service | host group |") :].splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)))
    return rows


def test_every_tier_is_in_the_service_table_with_its_status_and_port() -> None:
    tiers = yaml.safe_load((TOP / "tiers.yml").read_text())["tiers"]
    rows = _service_table()
    for name, tier in tiers.items():
        matching = [r for r in rows if f"`{name}`" in r["host group"]]
        assert len(matching) == 1, f"README service table: tier {name} in {len(matching)} rows"
        row = matching[0]
        assert row["status"] == tier["status"], (name, row["status"], tier["status"])
        first_port = str(tier["ports"][0]["port"])
        assert re.search(rf"\b{first_port}\b", row["port"]), (name, row["port"])
    listed = {g for r in rows for g in re.findall(r"`([a-z_]+)`", r["host group"])}
    assert listed == set(tiers), (
        f"README lists tiers tiers.yml does not have: {listed - set(tiers)}"
    )


def test_every_make_target_the_readme_names_exists() -> None:
    targets = set(re.findall(r"`make ([a-z0-9-]+)", README))
    assert {"up", "test"} <= targets
    shown = subprocess.run(["make", "help"], cwd=TOP, capture_output=True, text=True, check=True)
    known = set(re.findall(r"^\s+make (\S+)", shown.stdout, re.M))
    assert targets <= known, f"README names make targets that do not exist: {targets - known}"
