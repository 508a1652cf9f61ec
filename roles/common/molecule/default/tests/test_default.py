"""Checks of the common role on a real systemd host."""


def test_systemd_is_pid1_and_running(host):
    assert host.process.get(pid=1).comm == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state


def test_base_packages(host):
    for pkg in ("curl", "python3-venv", "tzdata", "logrotate"):
        assert host.package(pkg).is_installed, pkg


def test_timezone(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Australia/Perth"
    assert host.file("/etc/timezone").content_string.strip() == "Australia/Perth"
    # date(1) must report the configured zone (AWST, +0800)
    assert host.check_output("date +%z") == "+0800"


def test_journald_limits_applied(host):
    conf = host.file("/etc/systemd/journald.conf.d/mlpipe.conf")
    assert conf.contains("^SystemMaxUse=256M$")
    assert conf.content_string.startswith("#")  # ansible_managed header
    assert host.service("systemd-journald").is_running


def test_service_accounts(host):
    user = host.user("mlpipe")
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"
    assert user.home == "/var/lib/mlpipe"
    assert host.file("/var/lib/mlpipe").is_directory
    other = host.user("svc-test")
    assert other.home == "/srv/svc-test"
    assert host.file("/srv/svc-test").user == "svc-test"


def test_no_firewall_by_default(host):
    assert not host.package("nftables").is_installed
