"""Every member of the cluster: munge, its key, the shared configuration."""

import pytest

CONF_FILES = ["slurm.conf", "nodes.conf", "partitions.conf"]


def test_munge_key_is_private_to_munge(host):
    key = host.file("/etc/munge/munge.key")
    assert key.user == "munge"
    assert key.group == "munge"
    assert key.mode == 0o400
    assert key.size >= 32


def test_munge_running_and_enabled(host):
    svc = host.service("munge")
    assert svc.is_running
    assert svc.is_enabled


@pytest.mark.parametrize("name", CONF_FILES)
def test_configuration_is_the_controllers(host, controller, name):
    path = f"/etc/slurm/{name}"
    assert host.file(path).sha256sum == controller.file(path).sha256sum


def test_munge_credential_decodes_on_the_controller(host, controller):
    # the same key everywhere: a credential made here is valid on the controller
    cred = host.check_output("munge -n")
    res = controller.run("echo %s | unmunge", cred)
    assert res.rc == 0, res.stderr
    assert "STATUS:          Success (0)" in res.stdout
