"""The repository's shell entry points fail with one clear message on bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

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
    generated = yaml.safe_load(shown.stdout)
    assert len(generated) >= 5 and all(len(str(v)) >= 24 for v in generated.values())
    assert second.returncode == 0, second.stderr
    assert f"all {len(generated)} secrets present" in second.stdout
    assert vault_file.read_text() == encrypted

    password.write_text("another-password\n")
    wrong = run(
        [str(venv_bin / "python"), "ansible/scripts/gen-secrets.py", str(inventory), str(password)],
        env,
    )
    assert wrong.returncode == 2 and "cannot decrypt" in wrong.stderr
    assert vault_file.read_text() == encrypted


def _runbook(tmp_path: Path, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
    book = tmp_path / "book.yml"
    book.write_text(playbook)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    h1:\n      ansible_connection: local\n"
        '      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
    )
    venv_python = TOP / ".venv" / "bin" / "python"
    return run(
        [str(venv_python), "ansible/scripts/runbook.py", "play", "probe", str(book),
         "-i", str(inventory), *extra],
        dict(os.environ, ANSIBLE_CONFIG=str(TOP / "ansible" / "ansible.cfg")),
    )  # fmt: skip


CHANGING_PLAY = """
- hosts: h1
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        content: "{{ text }}\\n"
        dest: "{{ target }}"
        mode: "0644"
"""


def test_runbook_counts_changes_from_ansible_runner_stats(tmp_path: Path) -> None:
    """The summary line comes from the run's stats: 1 change, then none, then a failure."""
    target = tmp_path / "out.txt"
    first = _runbook(tmp_path, CHANGING_PLAY, "-e", f"target={target}", "-e", "text=one")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.rstrip().splitlines()[-1] == "probe: 1 changes (h1: 1)"
    assert target.read_text() == "one\n"
    again = _runbook(tmp_path, CHANGING_PLAY, "-e", f"target={target}", "-e", "text=one")
    assert again.stdout.rstrip().splitlines()[-1] == "probe: no changes"
    broken = _runbook(tmp_path, CHANGING_PLAY, "-e", f"target={tmp_path}/no/such/dir/x")
    assert broken.returncode != 0
    assert "probe: FAILED" in broken.stdout


def test_runbook_refuses_a_malformed_extra_var(tmp_path: Path) -> None:
    proc = _runbook(tmp_path, CHANGING_PLAY, "-e", "no-equals-sign")
    assert proc.returncode == 2
    assert "expected KEY=VALUE" in proc.stderr


def test_container_env_creates_the_shared_pip_cache(tmp_path: Path) -> None:
    """The shell form evaluates in bash and names one cache, created world-writable + sticky."""
    cache = tmp_path / "pip-cache"
    env = dict(os.environ, MLPIPE_PIP_CACHE_DIR=str(cache))
    script = 'eval "$(python3 ansible/scripts/container_env.py --sh)"; ' + (
        'echo "$MLPIPE_CGROUPNS_MODE|$MLPIPE_CGROUP_VOLUME|$MLPIPE_PIP_CACHE_VOLUME"'
    )
    proc = run(["bash", "-c", script], env)
    assert proc.returncode == 0, proc.stderr
    mode, volume, pip_volume = proc.stdout.strip().split("|")
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").is_file()
    assert (mode, volume) == (
        ("host", "/sys/fs/cgroup:/sys/fs/cgroup:rw")
        if v2
        else ("private", "/sys/fs/cgroup:/sys/fs/cgroup:ro")
    )
    assert pip_volume == f"{cache}:/var/cache/mlpipe-pip"
    assert cache.is_dir() and (cache.stat().st_mode & 0o7777) == 0o1777


def test_container_env_names_an_unusable_pip_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    env = dict(os.environ, MLPIPE_PIP_CACHE_DIR=str(blocker / "cache"))
    proc = run(["python3", "ansible/scripts/container_env.py", "--json"], env)
    assert proc.returncode == 1
    assert f"cannot create the shared pip cache {blocker}/cache" in proc.stderr
    assert "MLPIPE_PIP_CACHE_DIR" in proc.stderr
