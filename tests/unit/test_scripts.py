"""The repository's shell entry points fail with one clear message on bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=TOP, env=env, capture_output=True, text=True, check=False)


def test_unknown_role_lists_the_roles() -> None:
    proc = run(["tests/molecule/run.sh", "no-such-role"])
    assert proc.returncode == 2
    roles = sorted(p.parent.parent.name for p in TOP.glob("roles/*/molecule/default"))
    assert "unknown role 'no-such-role'" in proc.stderr
    for role in roles:
        assert role in proc.stderr


def test_make_test_roles_passes_role_through() -> None:
    proc = run(["make", "test-roles", "ROLE=no-such-role"])
    assert proc.returncode != 0
    assert "unknown role 'no-such-role'" in proc.stderr


def test_no_docker_and_no_way_to_install_it(tmp_path: Path) -> None:
    """Without docker, dockerd and apt-get the bootstrap stops with one message."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "seq", "sleep", "cat", "rm", "env"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/root")}
    proc = run([shutil.which("bash") or "/bin/bash", "ansible/scripts/ensure-docker.sh"], env)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "ERROR: no Docker engine answers and none can be installed here" in lines[0]
    assert "docker.io" in lines[0]


def test_gen_secrets_keeps_existing_values(tmp_path: Path) -> None:
    """Generated once, never replaced: a second run adds nothing and changes nothing."""
    venv_bin = TOP / ".venv" / "bin"
    env = dict(
        os.environ,
        PATH=f"{venv_bin}:{os.environ['PATH']}",
        ANSIBLE_CONFIG=str(TOP / "ansible" / "ansible.cfg"),  # as under make
    )
    password = tmp_path / "vault-pass"
    password.write_text("test-password\n")
    inventory = tmp_path / "inv"
    first = run(
        [str(venv_bin / "python"), "ansible/scripts/gen-secrets.py", str(inventory), str(password)],
        env,
    )
    assert first.returncode == 0, first.stderr
    vault_file = inventory / "group_vars" / "all" / "vault.yml"
    encrypted = vault_file.read_text()
    assert encrypted.startswith("$ANSIBLE_VAULT;")
    shown = run(
        [str(venv_bin / "ansible-vault"), "view", str(vault_file)],
        dict(env, ANSIBLE_VAULT_PASSWORD_FILE=str(password)),
    )
    assert "vault_mlflow_admin_password:" in shown.stdout
    second = run(
        [str(venv_bin / "python"), "ansible/scripts/gen-secrets.py", str(inventory), str(password)],
        env,
    )
    assert second.returncode == 0 and "all 3 secrets present" in second.stdout
    assert vault_file.read_text() == encrypted

    password.write_text("another-password\n")
    wrong = run(
        [str(venv_bin / "python"), "ansible/scripts/gen-secrets.py", str(inventory), str(password)],
        env,
    )
    assert wrong.returncode == 2 and "cannot decrypt" in wrong.stderr
    assert vault_file.read_text() == encrypted
