"""make provision / make destroy stop before anything exists when something is missing.

The scripts run for real: bash, and either no tools at all or the real terraform,
ansible and ssh on PATH. What they would create first (Terraform's data directory,
the inventory, an OS Login SSH key) must not appear, and the message names what is
missing and how to provide it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tfpaths import TF_ROOT

PROVISION = TF_ROOT / "scripts" / "provision.sh"
DESTROY = TF_ROOT / "scripts" / "destroy.sh"
BASICS = ("dirname", "basename", "sed", "tr", "tail", "cat", "mktemp", "rm", "mkdir", "bash")
TOOLS_PATH = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
PROJECT = "mlpipe-demo-123"


def _run(script: Path, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(script)],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _missing(stderr: str) -> list[str]:
    """The items of the 'Missing:' list."""
    assert "cannot start, nothing was created or changed. Missing:" in stderr, stderr
    items = stderr.split("Missing:\n", 1)[1].split("See docs/gcp.md")[0]
    return [line[4:] for line in items.splitlines() if line.startswith("  - ")]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    basics = tmp_path / "basics"
    basics.mkdir()
    for tool in BASICS:
        real = shutil.which(tool, path="/usr/bin:/bin")
        assert real, tool
        (basics / tool).symlink_to(real)
    return tmp_path


def _env(sandbox: Path, path: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": path,
        "HOME": str(sandbox / "home"),
        "LANG": "C.UTF-8",
        "TF_DATA_DIR": str(sandbox / "tfdata"),
        "MLPIPE_INVENTORY_DIR": str(sandbox / "inv"),
        "MLPIPE_KNOWN_HOSTS": str(sandbox / "known_hosts"),
        "MLPIPE_SSH_KEY": str(sandbox / "ssh" / "id"),
        **extra,
    }


def _configured(sandbox: Path, **extra: str) -> dict[str, str]:
    """Everything but GCP credentials, with the real tools (no gcloud: direct SSH)."""
    return _env(
        sandbox,
        TOOLS_PATH,
        MLPIPE_GCP_PROJECT=PROJECT,
        MLPIPE_GCP_REGION="test-region1",
        MLPIPE_TF_STATE_BUCKET=f"{PROJECT}-mlpipe-tfstate",
        MLPIPE_SSH_VIA="direct",
        MLPIPE_SSH_USER="alice_example_org",
        **extra,
    )


def _nothing_created(sandbox: Path) -> None:
    made = [p.name for p in (sandbox / "tfdata", sandbox / "inv", sandbox / "ssh") if p.exists()]
    assert not made, f"created before the checks passed: {made}"
    assert not (TF_ROOT / "environments" / "prod" / ".terraform").exists()


def test_provision_with_nothing_names_every_missing_item(sandbox: Path) -> None:
    r = _run(PROVISION, _env(sandbox, str(sandbox / "basics")))
    assert r.returncode == 2, r.stdout + r.stderr
    missing = "\n".join(_missing(r.stderr))
    for needle in (
        "terraform: not found on PATH",
        "GOOGLE_APPLICATION_CREDENTIALS=<service-account key file>",
        "gcloud auth application-default login",
        "MLPIPE_GCP_PROJECT=<project-id>",
        "MLPIPE_GCP_REGION=<region>",
        "MLPIPE_TF_STATE_BUCKET=<bucket>",
        "gcloud: not found",
        "ansible-playbook: not found",
        "OS Login user: set MLPIPE_SSH_USER",
    ):
        assert needle in missing, f"{needle!r} not named in:\n{r.stderr}"
    _nothing_created(sandbox)


@pytest.mark.skipif(not shutil.which("terraform", path=TOOLS_PATH), reason="terraform not on PATH")
def test_provision_with_the_tools_but_no_credentials(sandbox: Path) -> None:
    r = _run(PROVISION, _configured(sandbox))
    assert r.returncode == 2, r.stdout + r.stderr
    assert _missing(r.stderr) == [
        "GCP credentials: set GOOGLE_APPLICATION_CREDENTIALS=<service-account key file>, or run"
        " 'gcloud auth application-default login' (no application-default credentials found)"
    ]
    _nothing_created(sandbox)


def test_unreadable_credentials_file_is_named(sandbox: Path) -> None:
    nope = sandbox / "nope.json"
    r = _run(PROVISION, _configured(sandbox, GOOGLE_APPLICATION_CREDENTIALS=str(nope)))
    assert r.returncode == 2
    assert f"GOOGLE_APPLICATION_CREDENTIALS={nope} is not a readable file" in _missing(r.stderr)[0]
    _nothing_created(sandbox)


def test_application_default_credentials_are_accepted(sandbox: Path) -> None:
    adc = sandbox / "home" / ".config" / "gcloud"
    adc.mkdir(parents=True)
    (adc / "application_default_credentials.json").write_text("{}")
    env = _configured(sandbox)
    del env["MLPIPE_TF_STATE_BUCKET"]
    r = _run(PROVISION, env)
    assert r.returncode == 2
    assert [m.split(":")[0] for m in _missing(r.stderr)] == ["Terraform state bucket"]
    _nothing_created(sandbox)


def test_unknown_environment_lists_the_known_ones(sandbox: Path) -> None:
    r = _run(PROVISION, _configured(sandbox, MLPIPE_ENV="staging-does-not-exist"))
    assert r.returncode == 2
    env_item = [m for m in _missing(r.stderr) if m.startswith("environment")]
    assert env_item == [
        "environment 'staging-does-not-exist': no directory"
        " terraform/environments/staging-does-not-exist (set MLPIPE_ENV to one of: prod)"
    ]
    _nothing_created(sandbox)


def test_destroy_without_configuration_stops(sandbox: Path) -> None:
    r = _run(DESTROY, _env(sandbox, str(sandbox / "basics")))
    assert r.returncode == 2
    assert "make destroy: cannot start" in r.stderr
    assert any("MLPIPE_GCP_PROJECT" in m for m in _missing(r.stderr))
    _nothing_created(sandbox)


@pytest.mark.parametrize(
    ("stdin", "confirm"),
    [("yes\n", None), ("", None), ("", "some-other-project")],
    ids=["typed-yes", "no-input", "wrong-unattended"],
)
def test_destroy_without_the_project_id_destroys_nothing(
    sandbox: Path, stdin: str, confirm: str | None
) -> None:
    creds = sandbox / "sa.json"
    creds.write_text("{}")
    env = _configured(sandbox, GOOGLE_APPLICATION_CREDENTIALS=str(creds))
    if confirm:
        env["MLPIPE_DESTROY_CONFIRM"] = confirm
    inv = sandbox / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text("---\n")
    r = _run(DESTROY, env, stdin=stdin)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "is not 'mlpipe-demo-123': aborted, nothing was destroyed" in r.stderr
    assert f"GCP project '{PROJECT}'" in r.stdout
    assert (inv / "hosts.yml").exists(), "the inventory is kept"
    assert not (sandbox / "tfdata").exists(), "terraform ran"
