"""Checks of the docker role: package, daemon.json, group, a running nested engine."""

import json


def test_engine_from_debian(host):
    assert host.package("docker.io").is_installed
    assert not host.package("docker-ce").is_installed
    assert not host.file("/etc/apt/sources.list.d/docker.sources").exists


def test_daemon_json(host):
    f = host.file("/etc/docker/daemon.json")
    assert f.user == "root" and f.mode == 0o644
    conf = json.loads(f.content_string)
    assert conf["log-driver"] == "json-file"
    # docker_daemon_extra_options is merged recursively over the defaults
    assert conf["log-opts"] == {"max-size": "20m", "max-file": "5"}
    assert conf["storage-driver"] == "vfs"
    assert conf["live-restore"] is True


def test_service_enabled_and_running(host):
    svc = host.service("docker")
    assert svc.is_enabled
    assert svc.is_running


def test_engine_answers_with_configured_drivers(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["Driver"] == "vfs"
    assert info["LoggingDriver"] == "json-file"
    assert info["ServerVersion"]


def test_user_in_docker_group_talks_to_engine(host):
    assert "docker" in host.user("alice").groups
    out = host.run("sudo -u alice docker version --format '{{.Server.Version}}'")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip()
    # a user outside the group is refused by the socket permissions
    other = host.run("sudo -u nobody docker version --format '{{.Server.Version}}'")
    assert other.rc != 0
    assert "permission denied" in other.stderr.lower()
