"""Checks of the mlflow role after an upgrade from the previous release.

prepare.yml installed the previous release and logged a run, an artifact and
a model version; converge.yml upgraded. Everything here talks to the real
server (uvicorn workers, PostgreSQL backend) from inside the host.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[5]
# the one MLflow pin: mlpipe's [ml] extra; the role's default follows it
(VERSION,) = (
    m.group(1)
    for r in tomllib.loads((TOP / "tasks_py" / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["ml"]
    if (m := re.fullmatch(r"mlflow==(\S+)", r.split(";")[0].strip()))
)
PREVIOUS = "3.16.1"
VENV = "/opt/mlflow/venv"


def _secret(name):
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], name).read_text().strip()


@pytest.fixture(scope="module")
def url(host):
    return f"http://{host.check_output('hostname -I').split()[0]}:5000"


def _python(host, url, code, user="admin", password=None):
    """Run code with the MLflow client of the venv; credentials via the environment."""
    env = f"MLFLOW_TRACKING_URI={url} HOME=/root"
    if password is not None:
        env += f" MLFLOW_TRACKING_USERNAME={user} MLFLOW_TRACKING_PASSWORD={password}"
    script = textwrap.dedent(code)
    return host.run(f"env {env} {VENV}/bin/python - <<'EOF'\n{script}\nEOF")


def _curl_status(host, url, path, *args):
    cmd = "curl -s -o /dev/null -w '%%{http_code}' " + " ".join(["%s"] * len(args)) + " %s"
    return host.check_output(cmd, *args, url + path)


def test_service_runs_as_mlflow(host):
    svc = host.service("mlflow")
    assert svc.is_running
    assert svc.is_enabled
    main_pid = host.check_output("systemctl show -P MainPID mlflow")
    assert host.check_output(f"ps -o user= -p {main_pid}") == "mlflow"


def test_unit_is_hardened(host):
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show mlflow -p NoNewPrivileges -p ProtectSystem -p PrivateTmp "
            "-p ReadWritePaths -p ProtectHome -p User"
        ).splitlines()
    )
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "strict"
    assert props["PrivateTmp"] == "yes"
    assert props["ProtectHome"] == "yes"
    assert props["ReadWritePaths"] == "/var/lib/mlflow"
    assert props["User"] == "mlflow"


def test_uses_uvicorn_with_auth_and_allowed_hosts(host):
    cmdline = host.check_output("systemctl show -P ExecStart mlflow")
    for flag in ("--workers 2", "--app-name basic-auth", "--allowed-hosts", "--serve-artifacts"):
        assert flag in cmdline
    assert "gunicorn" not in cmdline
    assert "uvicorn" in host.check_output("ps -eo args")


def test_no_secret_on_any_command_line(host):
    args = host.check_output("ps -eo args")
    assert _secret("mlflow_db_password") not in args
    assert _secret("mlflow_admin_password") not in args


def test_secret_files_are_private(host):
    pgpass = host.file("/etc/mlflow/pgpass")
    assert (pgpass.user, pgpass.mode) == ("mlflow", 0o600)
    ini = host.file("/etc/mlflow/basic_auth.ini")
    assert (ini.user, ini.group, ini.mode) == ("root", "mlflow", 0o640)
    assert ini.content_string.startswith("#")


def test_listens_on_private_address_only(host, url):
    local = host.check_output("ss -Hltn 'sport = :5000'").split()[3]
    assert url.endswith(local)


def test_health(host, url):
    assert _curl_status(host, url, "/health") == "200"


def test_upgraded_in_place(host):
    out = host.check_output(
        f"{VENV}/bin/python -c 'import importlib.metadata as m; print(m.version(\"mlflow\"))'"
    )
    assert out == VERSION
    assert host.file("/var/lib/mlflow/.schema-version").content_string.strip() == VERSION


@pytest.mark.parametrize("db", ["mlflow", "mlflow_auth"])
def test_backup_taken_before_upgrade(host, db):
    dumps = host.check_output(
        f"ls /var/backups/mlflow/ | grep -- '-mlflow-{PREVIOUS}-to-{VERSION}-{db}.dump$' || true"
    ).split()
    assert len(dumps) == 1, dumps
    listing = host.run(f"pg_restore --list /var/backups/mlflow/{dumps[0]}")
    assert listing.rc == 0, listing.stderr
    assert "TABLE public" in listing.stdout


def test_postgresql_not_restarted_by_the_upgrade(host):
    # the upgrade changed MLflow only: PostgreSQL runs since before the backup
    pg_since = int(
        host.check_output("systemctl show -P ActiveEnterTimestampMonotonic postgresql@15-main")
    )
    mlflow_since = int(host.check_output("systemctl show -P ActiveEnterTimestampMonotonic mlflow"))
    assert 0 < pg_since < mlflow_since


def test_data_survived_the_upgrade(host, url):
    res = _python(
        host,
        url,
        """
        import json, mlflow
        from mlflow import MlflowClient
        client = MlflowClient()
        exp = client.get_experiment_by_name("upgrade-check")
        runs = client.search_runs([exp.experiment_id], "attributes.run_name = 'before-upgrade'")
        run = runs[0]
        text = mlflow.artifacts.load_text(run.info.artifact_uri + "/notes/kept.txt")
        versions = client.search_model_versions("name = 'upgrade-model'")
        print(json.dumps({
            "runs": len(runs),
            "param": run.data.params["alpha"],
            "metric": run.data.metrics["rmse"],
            "text": text,
            "versions": [v.run_id for v in versions],
            "run_id": run.info.run_id,
        }))
        """,
        password=_secret("mlflow_admin_password"),
    )
    assert res.rc == 0, res.stderr
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert data["runs"] == 1
    assert data["param"] == "0.5"
    assert data["metric"] == 1.25
    assert data["text"] == "kept across upgrades\n"
    assert data["versions"] == [data["run_id"]]


def test_run_logged_with_credentials(host, url):
    res = _python(
        host,
        url,
        """
        import mlflow
        mlflow.set_experiment("verify")
        with mlflow.start_run() as run:
            mlflow.log_metric("loss", 0.5)
            mlflow.log_text("artifact via the proxy\\n", "out/a.txt")
        got = mlflow.get_run(run.info.run_id)
        assert got.data.metrics["loss"] == 0.5
        print(run.info.run_id)
        """,
        password=_secret("mlflow_admin_password"),
    )
    assert res.rc == 0, res.stderr
    run_id = res.stdout.strip().splitlines()[-1]
    # artifacts proxied to the local fallback directory, owned by the service
    found = host.check_output(f"find /var/lib/mlflow/artifacts -path '*{run_id}*/out/a.txt'")
    assert host.file(found).user == "mlflow"
    # and the run is in PostgreSQL
    count = host.check_output(
        "runuser -u postgres -- psql -X -A -t -d mlflow -c "
        f"\"select count(*) from runs where run_uuid = '{run_id}'\""
    )
    assert count == "1"


def test_run_refused_without_credentials(host, url):
    res = _python(
        host,
        url,
        """
        import mlflow
        mlflow.set_experiment("verify-anonymous")
        """,
    )
    assert res.rc != 0
    assert "401" in res.stderr or "Unauthorized" in res.stderr, res.stderr


@pytest.mark.parametrize(
    "auth",
    [[], ["-u", "admin:password1234"], ["-u", "admin:not-the-admin-password"]],
    ids=["anonymous", "legacy-default-password", "wrong-password"],
)
def test_api_refused_without_valid_credentials(host, url, auth):
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert _curl_status(host, url, path, *auth) == "401"


def test_api_accepts_admin(host, url):
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    auth = ["-u", "admin:" + _secret("mlflow_admin_password")]
    assert _curl_status(host, url, path, *auth) == "200"


def test_foreign_host_header_refused(host, url):
    # (/health is exempt from the check: load balancers probe it by address)
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    auth = ["-u", "admin:" + _secret("mlflow_admin_password")]
    status = _curl_status(host, url, path, "-H", "Host: evil.example", *auth)
    assert status in ("400", "403"), status


def test_ngas_artifact_plugin_installed(host):
    res = host.run(
        f"{VENV}/bin/python -c "
        "'from importlib.metadata import entry_points; "
        '(ep,) = entry_points(group="mlflow.artifact_repository", name="ngas"); '
        "print(ep.load().__name__)'"
    )
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == "NgasArtifactRepository"


def test_mlpipe_installed_from_the_current_wheel(host):
    info = json.loads(
        subprocess.run(
            [sys.executable, str(TOP / "ansible" / "scripts" / "build_wheel.py"), "--info"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    out = host.check_output(
        f"{VENV}/bin/python -c 'import importlib.metadata as m; print(m.version(\"mlpipe\"))'"
    )
    assert out == info["version"]
    wheels = host.check_output(f"ls {VENV}/share/mlpipe-wheels").split()
    assert wheels == [Path(info["wheel"]).name]
    # the server runs the MLflow release the wheel pins (tasks_py/pyproject.toml)
    mlflow = host.check_output(
        f"{VENV}/bin/python -c 'import importlib.metadata as m; print(m.version(\"mlflow\"))'"
    )
    assert mlflow == info["pins"]["mlflow"]
    # the source copy earlier releases of the role installed from is gone
    assert not host.file("/opt/mlflow/src").exists


# --- accounts (mlflow_accounts in molecule.yml): pipeline EDIT, reader READ, default NO_PERMISSIONS
def _as(host, url, user, code):
    res = _python(host, url, code, user=user, password=_secret(f"mlflow_{user}_password"))
    return res


def _api(host, url, method, path, user, password, body=None):
    """HTTP status of one REST call as ``user``."""
    args = ["-X", method, "-u", f"{user}:{password}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    return _curl_status(host, url, path, *args)


def test_pipeline_account_logs_and_registers_in_what_the_admin_made(host, url):
    # "upgrade-check" and "upgrade-model" were created by the admin in prepare.yml
    res = _as(
        host,
        url,
        "pipeline",
        """
        import mlflow
        from mlflow import MlflowClient
        client = MlflowClient()
        exp = client.get_experiment_by_name("upgrade-check")
        run = client.create_run(exp.experiment_id, run_name="by-pipeline")
        client.log_metric(run.info.run_id, "rmse", 0.75)
        client.set_terminated(run.info.run_id)
        source = f"runs:/{run.info.run_id}/m"
        mv = client.create_model_version("upgrade-model", source, run.info.run_id)
        client.set_registered_model_alias("upgrade-model", "candidate", mv.version)
        print(mv.version)
        """,
    )
    assert res.rc == 0, res.stderr


def test_pipeline_account_cannot_administer(host, url):
    pw = _secret("mlflow_pipeline_password")
    body = {"username": "intruder", "password": "Intruder-pass-123456"}
    assert _api(host, url, "POST", "/api/2.0/mlflow/users/create", "pipeline", pw, body) == "403"
    assert (
        _api(
            host,
            url,
            "DELETE",
            "/api/2.0/mlflow/registered-models/delete",
            "pipeline",
            pw,
            {"name": "upgrade-model"},
        )
        == "403"
    )


def test_reader_reads_but_cannot_write(host, url):
    res = _as(
        host,
        url,
        "reader",
        """
        import json
        from mlflow import MlflowClient
        client = MlflowClient()
        exp = client.get_experiment_by_name("upgrade-check")
        runs = client.search_runs([exp.experiment_id])
        model = client.get_registered_model("upgrade-model")
        print(json.dumps({"runs": len(runs), "aliases": sorted(model.aliases)}))
        """,
    )
    assert res.rc == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["runs"] >= 1
    pw = _secret("mlflow_reader_password")
    exp_id = json.loads(
        host.check_output(
            "curl -s -u %s %s",
            f"reader:{pw}",
            url + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=upgrade-check",
        )
    )["experiment"]["experiment_id"]
    denied = {
        "create run": ("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp_id}),
        "set alias": (
            "POST",
            "/api/2.0/mlflow/registered-models/alias",
            {"name": "upgrade-model", "alias": "production", "version": "1"},
        ),
        "delete model": (
            "DELETE",
            "/api/2.0/mlflow/registered-models/delete",
            {"name": "upgrade-model"},
        ),
        "rename experiment": (
            "POST",
            "/api/2.0/mlflow/experiments/update",
            {"experiment_id": exp_id, "new_name": "renamed"},
        ),
    }
    got = {k: _api(host, url, m, p, "reader", pw, b) for k, (m, p, b) in denied.items()}
    assert got == {k: "403" for k in denied}


def test_a_new_account_sees_nothing_until_granted(host, url):
    admin = _secret("mlflow_admin_password")
    new_pw = "Newbie-pass-" + admin[:12]
    body = {"username": "newbie", "password": new_pw}
    status = _api(host, url, "POST", "/api/2.0/mlflow/users/create", "admin", admin, body)
    assert status in ("200", "400"), status  # 400: made by an earlier verify run
    out = host.check_output(
        "curl -s -u %s %s",
        f"newbie:{new_pw}",
        url + "/api/2.0/mlflow/experiments/search?max_results=50",
    )
    assert json.loads(out or "{}").get("experiments", []) == []
    model = "/api/2.0/mlflow/registered-models/get?name=upgrade-model"
    assert _api(host, url, "GET", model, "newbie", new_pw) == "403"
