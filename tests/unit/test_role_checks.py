"""The shared preflight checks (roles/mlpipe_checks), run by real ansible-playbook.

passwords.yml must refuse each kind of weak password with its reason, naming
the variable and the account, accept good ones, and never print a password.
os.yml must accept Debian 12 and refuse anything else, naming what it found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from procs import ansible_json

TOP = Path(__file__).resolve().parents[2]
GOOD = "Xy7gT4kq9LmZpQ2w"

PLAYBOOK = """\
- name: A shared check on this machine
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Run the check
      ansible.builtin.include_role:
        name: mlpipe_checks
        tasks_from: %s
"""


@dataclass(frozen=True)
class Run:
    rc: int
    failures: list[str]
    output: str


def check(tmp_path: Path, tasks_from: str, extra_vars: dict[str, Any]) -> Run:
    proc, out = ansible_json(tmp_path, PLAYBOOK % tasks_from, "-e", json.dumps(extra_vars))
    failures = [
        str(item.get("msg"))
        for play in out["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
        for item in result.get("results", [result])
        if item.get("failed")
    ]
    return Run(proc.returncode, failures, proc.stdout + proc.stderr)


def passwords(tmp_path: Path, users: list[dict[str, Any]]) -> Run:
    return check(
        tmp_path,
        "passwords.yml",
        {"mlpipe_checks_passwords": users, "mlpipe_checks_passwords_variable": "postgresql_users"},
    )


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ({"name": "mlflow", "password": "password1234"}, "a well-known default"),
        ({"name": "mlflow", "password": "PASSWORD1234"}, "a well-known default"),
        ({"name": "mlflow", "password": ""}, "shorter than 12 characters"),
        ({"name": "mlflow", "password": "Sh0rtPass"}, "shorter than 12 characters"),
        ({"name": "mlflowservice", "password": "mlflowservice"}, "the account name"),
        ({"name": "mlflow"}, "missing"),
        ({"name": "mlflow", "password": 123456789012345}, "not a string"),
    ],
    ids=["legacy-default", "legacy-default-upper", "empty", "short", "name", "missing", "number"],
)
def test_weak_password_refused_with_its_reason(
    tmp_path: Path, user: dict[str, Any], reason: str
) -> None:
    run = passwords(tmp_path, [{"name": "first", "password": GOOD}, user])
    assert run.rc != 0
    assert len(run.failures) == 1, run.failures
    message = run.failures[0]
    assert f"postgresql_users: the password of {user['name']} is {reason}." in message
    assert "inventory's vault" in message
    secret = str(user.get("password", ""))
    if len(secret) > 4 and secret.lower() != "password1234" and secret != user["name"]:
        assert secret not in run.output
    assert GOOD not in run.output


def test_good_passwords_accepted(tmp_path: Path) -> None:
    run = passwords(
        tmp_path, [{"name": "mlflow", "password": GOOD}, {"name": "other", "password": GOOD[::-1]}]
    )
    assert run.rc == 0, run.failures
    assert GOOD not in run.output and GOOD[::-1] not in run.output


def facts(distribution: str, version: str) -> dict[str, Any]:
    return {
        "ansible_facts": {
            "distribution": distribution,
            "distribution_major_version": version.split(".")[0],
            "distribution_version": version,
        }
    }


def test_os_debian_12_accepted(tmp_path: Path) -> None:
    run = check(tmp_path, "os.yml", facts("Debian", "12.8"))
    assert run.rc == 0, run.failures


@pytest.mark.parametrize(("distribution", "version"), [("Debian", "11.9"), ("Ubuntu", "12.04")])
def test_os_other_refused_naming_it(tmp_path: Path, distribution: str, version: str) -> None:
    run = check(tmp_path, "os.yml", facts(distribution, version))
    assert run.rc != 0
    assert run.failures == [
        f"mlpipe supports Debian 12 (bookworm) hosts; localhost runs {distribution} {version}."
    ]
