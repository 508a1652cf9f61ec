"""Checks of mlpipe_package after side_effect installed the second wheel."""

import os
from pathlib import Path

VENV = "/opt/mlpipe-test/venv"


def _second_wheel():
    (wheel,) = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "dist2").glob("mlpipe-*.whl")
    return wheel


def test_installed_version_is_the_second_wheels(host):
    version = host.check_output(
        f"{VENV}/bin/python -c 'import importlib.metadata as m; print(m.version(\"mlpipe\"))'"
    )
    assert _second_wheel().name == f"mlpipe-{version}-py3-none-any.whl"
    assert "+" in version  # the source fingerprint label


def test_mlpipe_command_runs_from_the_venv(host):
    out = host.run(f"{VENV}/bin/mlpipe --help")
    assert out.rc == 0, out.stderr
    assert "pipeline" in out.stdout


def test_only_the_installed_wheel_is_kept(host):
    kept = host.check_output(f"ls {VENV}/share/mlpipe-wheels").split()
    assert kept == [_second_wheel().name]


def test_no_extras_installed(host):
    assert host.run(f"{VENV}/bin/python -c 'import mlflow'").rc != 0
    assert host.run(f"{VENV}/bin/python -c 'import yaml, requests, filelock, tqdm'").rc == 0


def test_handler_ran_once_per_new_version(host):
    # converge (first install) and side_effect (the second wheel): two
    lines = host.file("/root/mlpipe-package-restarts").content_string.split()
    assert lines == ["restart", "restart"]
