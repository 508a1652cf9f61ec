"""Process helpers shared by tests and fixtures: free ports, readiness polls, stopping."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

READY_TIMEOUT = float(os.environ.get("MLPIPE_TEST_READY_TIMEOUT", "120"))

# An MLflow client's environment in tests: a failure shows at once (no retries, a
# short timeout), and no progress bars in the output.
MLFLOW_FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    check: Callable[[], bool],
    what: str,
    proc: subprocess.Popen | None = None,
    timeout: float = READY_TIMEOUT,
    log: Path | None = None,
) -> None:
    """Poll ``check`` until true; fail with the process log if it dies or times out."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            pytest.fail(f"{what} exited with {proc.returncode} before being ready:\n{tail}")
        try:
            if check():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(delay)  # poll interval, not a readiness assumption
        delay = min(delay * 1.5, 1.0)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    pytest.fail(f"{what} not ready after {timeout:.0f}s:\n{tail}")


def ansible_json(
    tmp_path: Path, playbook: str, *args: str, env: dict[str, str] | None = None, timeout: int = 300
) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run ``playbook`` (its text) with the repository's roles and ansible-playbook; the
    process and its JSON callback output."""
    top = Path(__file__).resolve().parents[1]
    (tmp_path / "play.yml").write_text(playbook)
    (tmp_path / "ansible.cfg").write_text(f"[defaults]\nroles_path = {top / 'roles'}\n")
    proc = subprocess.run(
        [str(top / ".venv/bin/ansible-playbook"), "play.yml", *args],
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            **(env or {}),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    return proc, json.loads(proc.stdout)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_web_site(
    mlpipe: str, env: dict[str, str], work: Path, *args: str
) -> tuple[subprocess.Popen, str, Path]:
    """``mlpipe web serve`` on a free loopback port (no refresh), ready: (process, URL, log)."""
    port = free_port()
    log = work / f"web-{port}.log"
    proc = subprocess.Popen(
        [mlpipe, "web", "serve", "--port", str(port), "--refresh", "0", *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: requests.get(f"{url}/healthz", timeout=5).status_code == 200,
        "mlpipe web serve",
        proc,
        log=log,
    )
    return proc, url, log
