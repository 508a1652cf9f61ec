"""Checks of the pipeline role, running its units for real.

prepare.yml started the NGAS double on the loopback; the fixture ``mlflow``
starts an MLflow server with basic auth from the venv the role installed
(test code: the role never starts a server). Runs go through systemd exactly
as on a node: ``systemctl start mlpipe-pipeline@<name>.service``.
"""

import json
import os
import shlex
import time
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[1] / "files"
VENV = "/opt/mlpipe/venv"
MLFLOW = "http://127.0.0.1:5000"
EXTRA = "/opt/mlflow-test-extra"  # Flask-WTF for --app-name basic-auth, outside the role's venv
SERVER_DIR = "/var/lib/mlflow-test"


def _password():
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "mlflow_admin_password")
    return path.read_text().strip()


def _constraint(name):
    top = Path(__file__).resolve().parents[5]
    for line in (top / "tests" / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(name.lower() + "=="):
            return line.strip()
    raise AssertionError(f"{name} is not pinned in tests/constraints.txt")


@pytest.fixture(scope="module")
def mlflow(host):
    """An MLflow server with basic auth on the loopback, artifacts on the NGAS double."""
    if not host.service("mlflow-test").is_running:
        pins = " ".join(shlex.quote(_constraint(n)) for n in ("Flask-WTF", "WTForms"))
        host.check_output(f"{VENV}/bin/pip install -q --no-deps --target {EXTRA} {pins}")
        host.check_output(f"mkdir -p {SERVER_DIR}")
        ini = (
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = sqlite:///{SERVER_DIR}/basic_auth.db\n"
            f"admin_username = admin\nadmin_password = {_password()}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        host.check_output(
            f"umask 077 && printf %s {shlex.quote(ini)} > {SERVER_DIR}/basic_auth.ini"
        )
        host.check_output(
            "systemd-run --unit=mlflow-test "
            f"--setenv=PYTHONPATH={EXTRA} --setenv=HOME={SERVER_DIR} "
            f"--setenv=MLFLOW_AUTH_CONFIG_PATH={SERVER_DIR}/basic_auth.ini "
            "--setenv=MLFLOW_FLASK_SERVER_SECRET_KEY=molecule-only "
            f"--setenv=MLPIPE_CACHE_DIR={SERVER_DIR}/cache "
            f"{VENV}/bin/mlflow server --host 127.0.0.1 --port 5000 --workers 1 "
            f"--backend-store-uri sqlite:///{SERVER_DIR}/mlflow.db --serve-artifacts "
            "--artifacts-destination ngas://127.0.0.1:7777/mlflow --app-name basic-auth"
        )
    deadline = time.monotonic() + 180
    while host.run(f"curl -sf {MLFLOW}/health").rc != 0:
        assert host.service("mlflow-test").is_running, host.run(
            "journalctl -u mlflow-test --no-pager -n 40"
        ).stdout
        assert time.monotonic() < deadline, "MLflow did not answer /health within 180 s"
        time.sleep(1)
    return MLFLOW


def _api(host, path, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    out = host.check_output(
        f"curl -sf -u admin:{_password()} '{MLFLOW}/api/2.0/mlflow/{path}?{query}'"
    )
    return json.loads(out)


def _start(host, unit):
    """systemctl start UNIT (waits for a oneshot); its result and this run's journal."""
    cursor = host.check_output("journalctl -n 0 --show-cursor -q").split("cursor: ", 1)[1]
    res = host.run(f"systemctl start {unit}")
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            f"systemctl show {unit} -p Result -p ExecMainStatus -p ActiveState"
        ).splitlines()
    )
    journal = [
        json.loads(line)
        for line in host.check_output(
            f"journalctl -u {unit} --after-cursor={shlex.quote(cursor)} -o json --no-pager"
        ).splitlines()
        if line.strip()
    ]
    return res, props, journal


def _uid(host, user="mlpipe"):
    return host.check_output(f"id -u {user}")


def _last_run(host, name):
    f = host.file(f"/var/lib/mlpipe/pipelines/{name}/last-run.json")
    assert f.exists, f"no last-run.json for {name}"
    assert f.user == "mlpipe"
    return json.loads(f.content_string)


def test_user_is_an_unprivileged_system_account(host):
    user = host.user("mlpipe")
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000
    assert user.groups == ["mlpipe"]


def test_mlpipe_installed_with_the_ml_extra(host):
    res = host.run(f"{VENV}/bin/python -c 'import mlpipe, mlflow, sklearn, pandas'")
    assert res.rc == 0, res.stderr


def test_config_and_credentials_are_readable_by_group_mlpipe_only(host):
    for path in ("/etc/mlpipe/mlpipe.toml", "/etc/mlpipe/credentials.env"):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "mlpipe", 0o640), path
        assert f.content_string.startswith("#"), path
        assert host.run(f"runuser -u nobody -- cat {path}").rc != 0, path
    assert _password() not in host.file("/etc/mlpipe/mlpipe.toml").content_string
    assert _password() in host.file("/etc/mlpipe/credentials.env").content_string
    unit = host.check_output("systemctl show mlpipe-pipeline@tiny.service -p Environment")
    assert _password() not in unit


def test_effective_config_as_mlpipe(host):
    out = host.check_output(
        f"runuser -u mlpipe -- env MLPIPE_CONFIG=/etc/mlpipe/mlpipe.toml {VENV}/bin/mlpipe "
        "config show --json"
    )
    config = json.loads(out)
    assert config["ngas"]["url"] == "http://127.0.0.1:7777"
    assert config["ngas"]["retries"] == 1  # pipeline_config merged over the settings
    assert config["mlflow"]["tracking_uri"] == "http://127.0.0.1:5000"
    assert config["cache"]["dir"] == "/var/cache/mlpipe"
    assert config["cache"]["mode"] == "auto"
    assert config["pipeline"]["data_prefix"] == "molecule/data"
    assert config["model"]["name"] == "seattle-weather"


def test_definitions_are_deployed_read_only_for_mlpipe(host):
    for rel in ("pipeline.yaml", "raw/days.csv"):
        f = host.file(f"/etc/mlpipe/pipelines/tiny/{rel}")
        assert f.content_string == (FILES / "tiny" / rel).read_text(), rel
        assert (f.user, f.group, f.mode) == ("root", "mlpipe", 0o640), rel
    assert host.run("runuser -u mlpipe -- touch /etc/mlpipe/pipelines/tiny/x").rc != 0
    env = host.file("/etc/mlpipe/pipelines/tiny.env").content_string
    assert 'MLPIPE_PIPELINE_DATA_PREFIX="molecule/tiny"' in env


def test_retired_pipeline_and_its_timer_were_removed(host):
    assert not host.file("/etc/mlpipe/pipelines/retired").exists
    assert not host.file("/etc/mlpipe/pipelines/retired.env").exists
    assert not host.file("/etc/systemd/system/mlpipe-pipeline@retired.timer.d").exists
    enabled = host.run("systemctl is-enabled mlpipe-pipeline@retired.timer").stdout.strip()
    assert enabled != "enabled"
    assert not host.service("mlpipe-pipeline@retired.timer").is_running
    assert host.file("/etc/mlpipe/pipelines/broken/pipeline.yaml").exists
    # the retired task and its timer's schedule (side_effect checked the timer stopped and disabled)
    assert not host.file("/etc/mlpipe/tasks/retired-task.args").exists
    assert not host.file("/etc/systemd/system/mlpipe-task@retired-task.timer.d").exists
    assert host.file("/etc/mlpipe/tasks/show-config.args").exists


def test_pipeline_unit_is_hardened(host):
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show mlpipe-pipeline@tiny.service -p Type -p User -p NoNewPrivileges "
            "-p ProtectSystem -p ProtectHome -p PrivateTmp -p ReadWritePaths "
            "-p CapabilityBoundingSet -p RestrictSUIDSGID"
        ).splitlines()
    )
    assert props["Type"] == "oneshot"
    assert props["User"] == "mlpipe"
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "strict"
    assert props["ProtectHome"] == "yes"
    assert props["PrivateTmp"] == "yes"
    assert props["RestrictSUIDSGID"] == "yes"
    assert props["CapabilityBoundingSet"] == ""
    assert sorted(props["ReadWritePaths"].split()) == ["/var/cache/mlpipe", "/var/lib/mlpipe"]


def test_pipeline_runs_through_its_unit_as_mlpipe(host, mlflow):
    res, props, journal = _start(host, "mlpipe-pipeline@tiny.service")
    assert res.rc == 0, res.stderr + "\n".join(e.get("MESSAGE", "") for e in journal)
    assert props["Result"] == "success"
    assert props["ExecMainStatus"] == "0"
    summary = _last_run(host, "tiny")
    assert summary["ok"] is True
    assert summary["pipeline"] == "tiny"
    counts = summary["counts"]
    assert counts["failed"] == counts["blocked"] == 0
    assert counts["ran"] + counts["skipped"] == 2
    # the config override of this pipeline: its data went under molecule/tiny
    (raw,) = summary["steps"]["load"]["outputs"]["raw"]
    assert raw["id"] == "molecule/tiny/raw/days.csv"
    # the step lines came from processes of user mlpipe, in the journal
    lines = [e for e in journal if e.get("_UID") == _uid(host)]
    messages = [str(e.get("MESSAGE", "")) for e in lines]
    assert any(m.startswith("load: ") for m in messages), messages
    assert any("last-run.json" in m for m in messages), messages
    # MLflow recorded the runs as started by the venv's mlpipe (its mlflow.user
    # is the account that logged in, with basic auth)
    exp = _api(host, "experiments/get-by-name", experiment_name="tiny-pipeline")["experiment"]
    runs = json.loads(
        host.check_output(
            f"curl -sf -u admin:{_password()} -X POST -H 'Content-Type: application/json' "
            f"-d '{json.dumps({'experiment_ids': [exp['experiment_id']]})}' "
            f"{MLFLOW}/api/2.0/mlflow/runs/search"
        )
    )["runs"]
    assert runs
    tags = [{t["key"]: t["value"] for t in r["data"]["tags"]} for r in runs]
    assert {t["mlflow.source.name"] for t in tags} == {f"{VENV}/bin/mlpipe"}
    assert {t["mlflow.user"] for t in tags} == {"admin"}


def test_second_run_skips_every_step(host, mlflow):
    res, props, _ = _start(host, "mlpipe-pipeline@tiny.service")
    assert res.rc == 0, res.stderr
    assert _last_run(host, "tiny")["counts"] == {"ran": 0, "skipped": 2, "failed": 0, "blocked": 0}


def test_failing_pipeline_fails_its_unit(host, mlflow):
    res, props, journal = _start(host, "mlpipe-pipeline@broken.service")
    assert res.rc != 0
    assert props["Result"] == "exit-code"
    assert props["ExecMainStatus"] == "2"  # bad input
    messages = " ".join(str(e.get("MESSAGE", "")) for e in journal)
    assert "unusable" in messages and "quarantined" in messages, messages
    summary = _last_run(host, "broken")
    assert summary["ok"] is False
    assert summary["steps"]["load"]["status"] == "failed"
    assert summary["steps"]["load"]["bad_input"] is True


def test_task_unit_runs_its_arguments_with_its_overrides(host):
    # the unit its timer starts (test_task_timer_is_scheduled)
    unit = host.check_output("systemctl show -P Unit mlpipe-task@show-config.timer")
    assert unit == "mlpipe-task@show-config.service"
    res, props, journal = _start(host, unit)
    assert res.rc == 0, res.stderr
    assert props["Result"] == "success"
    messages = [str(e.get("MESSAGE", "")) for e in journal if e.get("_UID") == _uid(host)]
    assert 'alias = "staging"' in messages, messages
    assert 'url = "http://127.0.0.1:7777"' in messages


def _as_mlpipe(host, *cmd):
    """CMD run as mlpipe in a transient unit with NoNewPrivileges, like the monitor's."""
    return host.run(
        "systemd-run --quiet --wait --pipe --collect -p User=mlpipe -p NoNewPrivileges=yes "
        + " ".join(shlex.quote(c) for c in cmd)
    )


def _invocation(host, unit):
    return host.check_output(f"systemctl show -P InvocationID {unit}")


def test_mlpipe_may_start_its_listed_unit_and_nothing_else(host):
    rule = host.file("/etc/polkit-1/rules.d/50-mlpipe-pipeline.rules")
    assert (rule.user, rule.group, rule.mode) == ("root", "root", 0o644)
    granted = "mlpipe-task@show-config.service"
    before = _invocation(host, granted)
    res = _as_mlpipe(host, "systemctl", "start", granted)
    assert res.rc == 0, res.stderr
    assert _invocation(host, granted) not in ("", before)
    assert host.check_output(f"systemctl show -P Result {granted}") == "success"
    res = _as_mlpipe(host, "systemctl", "start", "--no-block", granted)
    assert res.rc == 0, res.stderr  # as [monitor] retrain_unit starts it
    # another unit, and another verb on the granted one, stay root's
    other = "mlpipe-pipeline@tiny.service"
    before = _invocation(host, other)
    for cmd in (["start", other], ["restart", granted], ["stop", granted]):
        res = _as_mlpipe(host, "systemctl", *cmd)
        assert res.rc != 0 and "Interactive authentication required" in res.stderr, (cmd, res)
    assert _invocation(host, other) == before


def test_task_unit_without_arguments_fails_saying_why(host):
    res, props, journal = _start(host, "mlpipe-task@nothing-here.service")
    assert res.rc != 0
    assert props["ExecMainStatus"] == "2"
    messages = " ".join(str(e.get("MESSAGE", "")) for e in journal)
    assert "/etc/mlpipe/tasks/nothing-here.args: no arguments file" in messages


@pytest.mark.parametrize(
    "unit, calendar",
    [
        ("mlpipe-pipeline@tiny.timer", "*-01-01 03:00:00"),  # pipeline_timers: {name: tiny}
        ("mlpipe-task@show-config.timer", "2099-01-01 04:00:00"),  # {task: show-config}
    ],
)
def test_timer_is_scheduled(host, unit, calendar):
    timer = host.service(unit)
    assert timer.is_enabled
    assert timer.is_running
    assert calendar in host.check_output(f"systemctl show -P TimersCalendar {unit}")
    assert host.check_output(f"systemctl show -P Persistent {unit}") == "yes"


def _ftp_password():
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ftp_password")
    return path.read_text().strip()


FTP_EXTRA = "/opt/ftp-test-extra"  # pyftpdlib for the test's FTP server, outside the role's venv
DROP = "/srv/ftp-drop"


def test_watcher_unit_is_hardened_and_its_password_only_in_its_settings(host):
    unit = "mlpipe-watch@drop.service"
    assert host.service(unit).is_enabled
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            f"systemctl show {unit} -p Type -p User -p NoNewPrivileges -p ProtectSystem "
            "-p ProtectHome -p CapabilityBoundingSet -p ReadWritePaths -p Environment "
            "-p RestartPreventExitStatus"
        ).splitlines()
    )
    assert (props["Type"], props["User"], props["NoNewPrivileges"]) == ("exec", "mlpipe", "yes")
    assert (props["ProtectSystem"], props["ProtectHome"]) == ("strict", "yes")
    assert props["CapabilityBoundingSet"] == ""
    assert sorted(props["ReadWritePaths"].split()) == ["/var/cache/mlpipe", "/var/lib/mlpipe"]
    assert props["RestartPreventExitStatus"].split()[0] == "2"
    assert _ftp_password() not in props["Environment"]
    f = host.file("/etc/mlpipe/watchers/drop.env")
    assert (f.user, f.group, f.mode) == ("root", "mlpipe", 0o640)
    env = f.content_string
    assert f'MLPIPE_WATCH_PASSWORD="{_ftp_password()}"' in env
    assert 'MLPIPE_PIPELINE_DATA_PREFIX="molecule/watch"' in env  # the pipeline's override
    assert 'MLPIPE_WATCH_PIPELINE="/etc/mlpipe/pipelines/watch/pipeline.yaml"' in env
    assert host.run("runuser -u nobody -- cat /etc/mlpipe/watchers/drop.env").rc != 0


def test_watcher_takes_a_file_from_ftp_once_and_stops_cleanly(host, mlflow):
    unit = "mlpipe-watch@drop.service"
    if not host.service("ftp-test").is_running:
        pin = shlex.quote(_constraint("pyftpdlib"))
        host.check_output(f"{VENV}/bin/pip install -q --no-deps --target {FTP_EXTRA} {pin}")
        host.check_output(f"mkdir -p {DROP}")
        host.check_output(
            f"systemd-run --unit=ftp-test --setenv=PYTHONPATH={FTP_EXTRA} "
            f"{VENV}/bin/python -m pyftpdlib -i 127.0.0.1 -p 2121 -d {DROP} "
            f"-u drop -P {shlex.quote(_ftp_password())}"
        )
    cursor = host.check_output("journalctl -n 0 --show-cursor -q").split("cursor: ", 1)[1]
    host.check_output(f"cp /etc/mlpipe/pipelines/tiny/raw/days.csv {DROP}/days.csv")
    deadline = time.monotonic() + 120

    def journal():
        return host.check_output(
            f"journalctl -u {unit} --after-cursor={shlex.quote(cursor)} -o cat --no-pager"
        )

    while "days.csv: done" not in journal():
        assert host.service(unit).is_running, journal()
        assert time.monotonic() < deadline, journal()[-3000:]
        time.sleep(1)
    text = journal()
    assert "archived as molecule/watch/incoming/days.csv version 1" in text
    got = host.check_output(
        "curl -sf 'http://127.0.0.1:7777/RETRIEVE?file_id=molecule/watch/incoming/days.csv'"
    )
    assert got.strip() == (FILES / "tiny" / "raw" / "days.csv").read_text().strip()
    assert host.file("/var/lib/mlpipe/watch/drop.sqlite").user == "mlpipe"

    host.check_output(f"systemctl stop {unit}")
    result = host.check_output(f"systemctl show {unit} -p Result").strip()
    assert result == "Result=success"  # SIGTERM: stopped between files, exit 0
    assert "stopped" in journal()
    once = host.run(  # one more poll with the unit's settings: the file is not taken again
        "bash -c 'set -a && . /etc/mlpipe/credentials.env && . /etc/mlpipe/watchers/drop.env "
        "&& exec runuser -u mlpipe -- env MLPIPE_CONFIG=/etc/mlpipe/mlpipe.toml "
        f"HOME=/var/lib/mlpipe {VENV}/bin/mlpipe watch ftp --once'"
    )
    assert once.rc == 0, once.stdout + once.stderr
    assert "poll: 1 file(s) listed, 0 taken, 0 done, 0 error(s)" in once.stdout
    host.check_output(f"systemctl start {unit}")
    assert journal().count("days.csv: downloading") == 1


def test_definition_runs_with_its_executor(host, mlflow):
    """pipeline_definitions[].executor reaches mlpipe through the unit: on-daliuge runs with
    the daliuge executor and the [daliuge] settings of pipeline_daliuge_url (an island that
    is not there: the run fails naming it); tiny's default is local."""
    tiny = host.file("/etc/mlpipe/pipelines/tiny.env").content_string
    assert 'MLPIPE_EXECUTOR="local"' in tiny.splitlines()
    dlg = host.file("/etc/mlpipe/pipelines/on-daliuge.env").content_string
    assert 'MLPIPE_EXECUTOR="daliuge"' in dlg.splitlines()
    # the steps on the node managers get the credentials and the pipeline's overrides
    steps = "/etc/mlpipe/pipelines/on-daliuge.steps.env"
    assert f'MLPIPE_DALIUGE_ENV_FILE="{steps}"' in dlg.splitlines()
    f = host.file(steps)
    assert (f.user, f.group, f.mode) == ("root", "mlpipe", 0o640)
    # read as the node helper reads it on a worker: every credential intact, then the override
    parse = (
        f"{VENV}/bin/python -c 'import json, sys, pathlib; "
        "from mlpipe.pipeline.executors.daliuge_node import read_env_file as r; "
        "print(json.dumps([r(pathlib.Path(p)) for p in sys.argv[1:]]))'"
    )
    got, creds = json.loads(host.check_output(f"{parse} {steps} /etc/mlpipe/credentials.env"))
    assert creds and creds.items() <= got.items(), (creds, got)
    assert got["MLFLOW_TRACKING_PASSWORD"] == _password()
    assert got["MLPIPE_PIPELINE_DATA_PREFIX"] == "molecule/on-daliuge"
    assert not host.file("/etc/mlpipe/pipelines/tiny.steps.env").exists
    config = json.loads(
        host.check_output(
            f"runuser -u mlpipe -- env MLPIPE_CONFIG=/etc/mlpipe/mlpipe.toml {VENV}/bin/mlpipe "
            "config show --json"
        )
    )
    assert {k: config["daliuge"][k] for k in ("url", "python", "config_file", "env_file")} == {
        "url": "http://127.0.0.1:9",
        "python": f"{VENV}/bin/python",
        "config_file": "/etc/mlpipe/mlpipe.toml",
        "env_file": "/etc/mlpipe/credentials.env",
    }
    res, props, journal = _start(host, "mlpipe-pipeline@on-daliuge.service")
    messages = "\n".join(str(e.get("MESSAGE", "")) for e in journal)
    assert res.rc != 0 and props["Result"] == "exit-code", messages
    assert "with the daliuge executor" in messages, messages
    assert "http://127.0.0.1:9" in messages, messages
