"""Checks of the postgresql role on a real systemd host, over real connections."""

import os
from pathlib import Path

import pytest


def _password(name):
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], name).read_text().strip()


def _address(host):
    return host.check_output("hostname -I").split()[0]


def _psql(host, user, database, address, password, sql="select current_user"):
    return host.run(
        "PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -X -A -t -h %s -U %s -d %s -c %s",
        password,
        address,
        user,
        database,
        sql,
    )


def test_service_running_and_enabled(host):
    svc = host.service("postgresql@15-main")
    assert svc.is_running
    assert svc.is_enabled


def test_listens_on_loopback_and_private_address_only(host):
    listening = host.check_output("ss -Hltn 'sport = :5432'")
    local = sorted(line.split()[3] for line in listening.splitlines())
    assert local == sorted(["127.0.0.1:5432", f"{_address(host)}:5432"])


def test_settings_file_is_managed(host):
    conf = host.file("/etc/postgresql/15/main/conf.d/mlpipe.conf")
    assert conf.content_string.startswith("#")
    assert conf.contains("^password_encryption = scram-sha-256$")


@pytest.mark.parametrize("via", ["loopback", "private"])
def test_owner_logs_in_with_password(host, via):
    address = "127.0.0.1" if via == "loopback" else _address(host)
    res = _psql(host, "mlflow", "mlflow", address, _password("pg_mlflow"))
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == "mlflow"
    res = _psql(host, "mlflow", "mlflow_auth", address, _password("pg_mlflow"))
    assert res.rc == 0, res.stderr


def test_owner_can_create_tables(host):
    sql = "create table if not exists t_probe (i int); drop table t_probe"
    res = _psql(host, "mlflow", "mlflow", "127.0.0.1", _password("pg_mlflow"), sql)
    assert res.rc == 0, res.stderr


def test_wrong_password_refused(host):
    res = _psql(host, "mlflow", "mlflow", _address(host), "not-the-password-at-all")
    assert res.rc != 0
    assert "password authentication failed" in res.stderr


def test_other_databases_refused(host):
    # no pg_hba rule lets mlflow into another role's database or the maintenance db
    for database in ("other", "postgres"):
        res = _psql(host, "mlflow", database, _address(host), _password("pg_mlflow"))
        assert res.rc != 0, database
        assert "no pg_hba.conf entry" in res.stderr, res.stderr
    res = _psql(host, "other", "other", _address(host), _password("pg_other"))
    assert res.rc == 0, res.stderr


def test_passwords_stored_as_scram(host):
    out = host.check_output(
        "runuser -u postgres -- psql -X -A -t -c "
        "\"select rolname || ' ' || left(rolpassword, 13) from pg_authid "
        "where rolname in ('mlflow', 'other') order by 1\""
    )
    assert out.splitlines() == ["mlflow SCRAM-SHA-256", "other SCRAM-SHA-256"]


def test_databases_owned(host):
    out = host.check_output(
        "runuser -u postgres -- psql -X -A -t -c "
        "\"select datname || ' ' || pg_get_userbyid(datdba) from pg_database "
        "where datname in ('mlflow', 'mlflow_auth', 'other') order by 1\""
    )
    assert out.splitlines() == ["mlflow mlflow", "mlflow_auth mlflow", "other other"]
