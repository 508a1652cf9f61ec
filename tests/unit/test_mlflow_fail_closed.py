"""MLflow lookups fail closed: a refused login, a stopped server or a 5xx answer is an error
saying what failed (exit 1), never "no such model" (exit 2) and never "no champion"; the
alias does not move and the promotion gate is never skipped. Real MLflow servers throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from http_faults import FaultyProxy
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import run_task

MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")
ADMIN, ADMIN_PASSWORD = "admin", "Test-admin-pw-0"
# no retries, short timeouts: a failure is reported in seconds, not minutes
FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def mlpipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLPIPE, *args], capture_output=True, text=True, env=env, check=False, timeout=300
    )


def client_env(url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, **FAST, "MLPIPE_MLFLOW_TRACKING_URI": url, **extra}


def register_two_versions(client: mlflow.MlflowClient, name: str) -> None:
    """``name`` with versions 1 and 2 (runs without artifacts), ``production`` -> 1."""
    client.create_registered_model(name)
    experiment = client.create_experiment(f"exp-{name}")
    for _ in range(2):
        run = client.create_run(experiment)
        source = f"runs:/{run.info.run_id}/model"
        client.create_model_version(name, source=source, run_id=run.info.run_id)
    client.set_registered_model_alias(name, "production", "1")


def production(client: mlflow.MlflowClient, name: str) -> str:
    return str(client.get_registered_model(name).aliases["production"])


@pytest.fixture(scope="module")
def auth_server(mlflow_server_factory, tmp_path_factory):
    """MLflow with basic auth, configured like roles/mlflow does (basic_auth.ini)."""
    work = tmp_path_factory.mktemp("basic-auth")
    ini = work / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{work / 'basic_auth.db'}\n"
        f"admin_username = {ADMIN}\n"
        f"admin_password = {ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "tests-only"}
    return mlflow_server_factory("basic-auth", "--app-name", "basic-auth", env=env)


@pytest.fixture
def admin(auth_server, monkeypatch) -> mlflow.MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    return mlflow.MlflowClient(auth_server.url)


def test_wrong_password_is_an_auth_error_and_moves_nothing(auth_server, admin, tmp_path):
    name = f"auth-{uuid.uuid4().hex[:8]}"
    register_two_versions(admin, name)
    env = client_env(auth_server.url, MLFLOW_TRACKING_PASSWORD="wrong-password")
    for args in (["promote", name, "2", "--if-better", "rmse"], ["promote", name, "2"]):
        proc = mlpipe(*args, env=env)
        assert proc.returncode == 1, proc.stderr  # a failure, not "bad input" (2)
        assert f"MLflow server at {auth_server.url} refused the login of user 'admin'" in (
            proc.stderr
        )
        assert "MLFLOW_TRACKING_PASSWORD" in proc.stderr and "Traceback" not in proc.stderr
        assert "no registered model" not in proc.stderr
    assert production(admin, name) == "1"

    # in a pipeline the step fails with that message (its skip key is not "unresolved")
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"name: auth-{name}\n"
        "tasks:\n"
        f"  promote: {{task: promote, params: {{model: 'models:/{name}/2', if_better: rmse}}}}\n"
    )
    proc = mlpipe("pipeline", "run", str(path), "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    step = summary["steps"]["promote"]
    assert (summary["ok"], step["status"], step["bad_input"]) == (False, "failed", False)
    assert "refused the login of user 'admin'" in step["summary"]
    assert production(admin, name) == "1"


def test_stopped_server_is_unreachable_and_the_alias_stays(mlflow_server_factory):
    name = f"down-{uuid.uuid4().hex[:8]}"
    first = mlflow_server_factory("to-stop")
    register_two_versions(mlflow.MlflowClient(first.url), name)
    first.stop()
    proc = mlpipe("promote", name, "2", "--if-better", "rmse", env=client_env(first.url))
    assert proc.returncode == 1, proc.stderr
    assert f"the MLflow tracking server at {first.url} is unreachable" in proc.stderr
    assert "MLPIPE_MLFLOW_TRACKING_URI" in proc.stderr and "Traceback" not in proc.stderr
    # the same database behind a new server: nothing was changed
    again = mlflow_server_factory("restarted", store=first.store)
    assert production(mlflow.MlflowClient(again.url), name) == "1"


@pytest.fixture
def champion_and_worse(task_env, weather_raw) -> Iterator[str]:
    """Two real trained versions of the test's model: 1 (production) and a worse 2."""
    ctx = TaskContext.from_config()
    raw = run_task("load-raw", {}, {"sources": [str(weather_raw / "seattle-2014.csv")]}, ctx=ctx)
    pre = run_task("preprocess", {"raw": raw.outputs["raw"]}, {}, ctx=ctx)
    name = task_env["MLPIPE_MODEL_NAME"]
    run_task("train", {"data": pre.outputs["preprocessed"]}, {}, ctx=ctx)
    run_task("train", {"data": pre.outputs["preprocessed"]}, {"alpha": 80}, ctx=ctx)
    run_task("promote", {}, {"model": f"models:/{name}/1"}, ctx=ctx)
    yield name


def test_gate_is_not_bypassed_when_mlflow_answers_5xx(task_env, champion_and_worse):
    name = champion_and_worse
    client = mlflow.MlflowClient(task_env["MLPIPE_MLFLOW_TRACKING_URI"])
    with FaultyProxy(task_env["MLPIPE_MLFLOW_TRACKING_URI"]) as proxy:
        env = client_env(proxy.url)
        # reading an alias fails: the champion is still known, so the gate runs and refuses
        proxy.fail = ("GET", r"/registered-models/alias")
        proc = mlpipe("promote", name, "2", "--if-better", "rmse", env=env)
        assert proc.returncode == 1, proc.stderr
        assert "refused" in proc.stderr and "production stays at version 1" in proc.stderr
        assert production(client, name) == "1"
        # reading the registered model fails: an error naming the server, nothing moves
        proxy.fail = ("GET", r"/registered-models/get")
        proc = mlpipe("promote", name, "2", "--if-better", "rmse", env=env)
        assert proc.returncode == 1, proc.stderr
        assert f"the MLflow server at {proxy.url} failed" in proc.stderr
        assert proxy.failed >= 1 and "Traceback" not in proc.stderr
    assert production(client, name) == "1"
