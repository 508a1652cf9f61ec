"""make provision / make destroy scripts, run with a scrubbed environment and fake tools."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import HERE, TF_ROOT

PROVISION = TF_ROOT / "scripts" / "provision.sh"
DESTROY = TF_ROOT / "scripts" / "destroy.sh"
BASICS = ("dirname", "sed", "ls", "tr", "tail", "cat", "mktemp", "rm", "mkdir", "grep", "tee")
BASICS += ("awk", "sleep", "bash", "env")

FAKES = {
    "terraform": """
echo "terraform $*" >> "$FAKE_LOG"
case " $* " in *" output "*) cat "$FAKE_TF_OUTPUT" ;; esac
""",
    "gcloud": """
echo "gcloud $*" >> "$FAKE_LOG"
case "$*" in *describe-profile*) echo alice_example_org ;; esac
""",
    "ansible": """
n=$(( $(cat "$FAKE_DIR/ansible.calls" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$FAKE_DIR/ansible.calls"
echo "ansible $*" >> "$FAKE_LOG"
if [ "$n" -lt "${FAKE_SSH_OK_AT:-1}" ]; then
  echo "mlpipe-web-0 | UNREACHABLE!: ssh: connect to host"; exit 4
fi
echo "mlpipe-web-0 | SUCCESS => {\\"ping\\": \\"pong\\"}"
""",
    "ansible-playbook": """
echo "ansible-playbook $*" >> "$FAKE_LOG"
printf 'PLAY RECAP\\nmlpipe-web-0 : ok=3 changed=1 unreachable=0 failed=0\\n'
""",
    "ssh": "exit 0\n",
    "ssh-keygen": "exit 1\n",
}


def _bin(tmp_path: Path, fakes: tuple[str, ...]) -> Path:
    """A PATH directory with the shell basics and the given fake tools only."""
    b = tmp_path / "bin"
    b.mkdir(exist_ok=True)
    for tool in BASICS:
        real = shutil.which(tool, path="/usr/bin:/bin")
        if real and not (b / tool).exists():
            (b / tool).symlink_to(real)
    for name in fakes:
        p = b / name
        p.write_text("#!/bin/bash\n" + FAKES[name])
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return b


def _run(script: Path, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/bash", str(script)],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def scrubbed(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"PATH": str(_bin(tmp_path, ())), "HOME": str(home), "LANG": "C.UTF-8"}


@pytest.fixture
def configured(tmp_path: Path) -> dict[str, str]:
    """Everything provision.sh asks for, with fake terraform/gcloud/ansible."""
    key = tmp_path / "id"
    key.write_text("fake private key\n")
    (tmp_path / "id.pub").write_text("ssh-ed25519 AAAA fake\n")
    creds = tmp_path / "sa.json"
    creds.write_text("{}")
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": str(_bin(tmp_path, tuple(FAKES))),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GOOGLE_APPLICATION_CREDENTIALS": str(creds),
        "MLPIPE_GCP_PROJECT": "mlpipe-demo-123",
        "MLPIPE_GCP_REGION": "test-region1",
        "MLPIPE_TF_STATE_BUCKET": "mlpipe-demo-123-mlpipe-tfstate",
        "MLPIPE_AUTO_APPROVE": "1",
        "MLPIPE_SSH_KEY": str(key),
        "MLPIPE_SSH_RETRIES": "3",
        "MLPIPE_SSH_DELAY": "0",
        "MLPIPE_INVENTORY_DIR": str(tmp_path / "inv"),
        "MLPIPE_KNOWN_HOSTS": str(tmp_path / "known_hosts"),
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_DIR": str(tmp_path),
        "FAKE_TF_OUTPUT": str(HERE / "fixtures" / "tf_output_prod.json"),
    }


def _state_of_env_dir() -> set[str]:
    return {p.name for p in (TF_ROOT / "environments" / "prod").iterdir()}


def test_provision_without_anything_names_every_missing_item(scrubbed):
    before = _state_of_env_dir()
    r = _run(PROVISION, scrubbed)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr
    assert "cannot start, nothing was created or changed" in err
    for needle in (
        "terraform: not found on PATH",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "gcloud auth application-default login",
        "MLPIPE_GCP_PROJECT",
        "MLPIPE_GCP_REGION",
        "MLPIPE_TF_STATE_BUCKET",
        "gcloud: not found",
        "ansible-playbook: not found",
    ):
        assert needle in err, f"{needle!r} not named in:\n{err}"
    assert _state_of_env_dir() == before


def test_provision_with_tools_but_no_credentials(scrubbed, tmp_path):
    scrubbed["PATH"] = str(_bin(tmp_path, tuple(FAKES)))
    scrubbed["FAKE_LOG"] = str(tmp_path / "calls.log")
    r = _run(PROVISION, scrubbed)
    assert r.returncode == 2
    assert "terraform" not in r.stderr.split("Missing:")[1].split("GCP credentials")[0]
    assert "GCP credentials" in r.stderr and "MLPIPE_GCP_PROJECT" in r.stderr
    assert not (tmp_path / "calls.log").exists(), "a tool was called before the checks passed"


def test_unreadable_credentials_file_is_named(configured, tmp_path):
    configured["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path / "nope.json")
    r = _run(PROVISION, configured)
    assert r.returncode == 2
    assert (
        f"GOOGLE_APPLICATION_CREDENTIALS={tmp_path / 'nope.json'} is not a readable file"
        in r.stderr
    )
    assert not Path(configured["FAKE_LOG"]).exists()


def test_application_default_credentials_are_accepted(configured, tmp_path):
    del configured["GOOGLE_APPLICATION_CREDENTIALS"]
    adc = Path(configured["HOME"]) / ".config" / "gcloud"
    adc.mkdir(parents=True)
    (adc / "application_default_credentials.json").write_text("{}")
    del configured["MLPIPE_TF_STATE_BUCKET"]
    r = _run(PROVISION, configured)
    assert r.returncode == 2
    assert "GCP credentials" not in r.stderr
    assert "MLPIPE_TF_STATE_BUCKET" in r.stderr


def test_unknown_environment(configured):
    configured["MLPIPE_ENV"] = "staging-does-not-exist"
    r = _run(PROVISION, configured)
    assert r.returncode == 2
    assert "no directory terraform/environments/staging-does-not-exist" in r.stderr


def test_provision_full_flow_with_fakes(configured, tmp_path):
    configured["FAKE_SSH_OK_AT"] = "2"  # first SSH probe fails, second works
    r = _run(PROVISION, configured)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = Path(configured["FAKE_LOG"]).read_text().splitlines()
    tf = [c for c in calls if c.startswith("terraform")]
    assert "init -input=false -reconfigure" in tf[0]
    assert "-backend-config=bucket=mlpipe-demo-123-mlpipe-tfstate" in tf[0]
    assert "-backend-config=prefix=mlpipe/prod" in tf[0]
    assert "apply -input=false -auto-approve" in tf[1]
    assert "output -json" in tf[2]
    assert any("os-login ssh-keys add" in c for c in calls)
    pings = [c for c in calls if c.startswith("ansible ")]
    assert len(pings) == 2 and "ansible.builtin.ping" in pings[0]
    play = [c for c in calls if c.startswith("ansible-playbook")]
    assert len(play) == 1
    assert "ansible/site.yml" in play[0] and f"-i {tmp_path / 'inv'}" in play[0]
    inv = (tmp_path / "inv" / "hosts.yml").read_text()
    assert "ansible_user: alice_example_org" in inv
    assert "attempt 1/3" in r.stdout
    assert "web tier public IP(s): 203.0.113.10" in r.stdout


def test_provision_gives_up_on_ssh_after_bounded_retries(configured):
    configured["FAKE_SSH_OK_AT"] = "99"
    r = _run(PROVISION, configured)
    assert r.returncode == 1
    assert "SSH still fails after 3 attempts" in r.stderr
    calls = Path(configured["FAKE_LOG"]).read_text()
    assert calls.count("ansible.builtin.ping") == 3
    assert "ansible-playbook" not in calls


def test_destroy_without_configuration_stops(scrubbed):
    r = _run(DESTROY, scrubbed)
    assert r.returncode == 2
    assert "make destroy: cannot start" in r.stderr and "MLPIPE_GCP_PROJECT" in r.stderr


def test_destroy_wrong_confirmation_destroys_nothing(configured):
    r = _run(DESTROY, configured, stdin="yes\n")
    assert r.returncode == 1
    assert "aborted, nothing was destroyed" in r.stderr
    assert not Path(configured["FAKE_LOG"]).exists()


def test_destroy_no_input_destroys_nothing(configured):
    r = _run(DESTROY, configured, stdin="")
    assert r.returncode == 1
    assert not Path(configured["FAKE_LOG"]).exists()


def test_destroy_after_typing_the_project_id(configured, tmp_path):
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text("---\n")
    r = _run(DESTROY, configured, stdin="mlpipe-demo-123\n")
    assert r.returncode == 0, r.stderr
    calls = Path(configured["FAKE_LOG"]).read_text()
    assert "destroy -input=false -auto-approve" in calls
    assert not (inv / "hosts.yml").exists()


def test_scripts_are_strict_bash():
    for script in (PROVISION, DESTROY, HERE / "lint.sh"):
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), script
        assert "set -euo pipefail" in text, script
        assert os.access(script, os.X_OK), script
