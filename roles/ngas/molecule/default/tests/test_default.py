"""Checks of the ngas role against the real NGAS it built (after the upgrade)."""

import os
import re
from pathlib import Path

import pytest

PORT = 7777
ROOT = "/srv/ngas"


@pytest.fixture(scope="module")
def url(host):
    addr = host.ansible("setup", "gather_subset=network")["ansible_facts"]["ansible_default_ipv4"][
        "address"
    ]
    return f"http://{addr}:{PORT}"


def curl(host, *args, user="writer"):
    """curl on the host, as one of the scenario's NGAS users (None: no credentials)."""
    auth = ["--user", f"{user}:{_secret(f'ngas_{user}')}"] if user else []
    return host.run("curl --silent --show-error " + " ".join(f"'{a}'" for a in [*auth, *args]))


def _secret(name):
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], name).read_text().strip()


def test_service_runs_as_ngas(host):
    svc = host.service("ngas")
    assert svc.is_running
    assert svc.is_enabled
    pid = host.check_output("systemctl show --property=MainPID --value ngas")
    assert host.check_output(f"ps -o user= -p {pid}") == "ngas"
    user = host.user("ngas")
    assert user.shell == "/usr/sbin/nologin"


def test_build_libraries_installed(host):
    for pkg in ("libdb-dev", "sqlite3", "python3-venv"):
        assert host.package(pkg).is_installed, pkg


def test_status_online_on_private_address_only(host, url):
    out = curl(host, f"{url}/STATUS", user=None)  # STATUS is excluded from authorization
    assert out.rc == 0, out.stderr
    assert 'State="ONLINE"' in out.stdout
    assert 'Status="SUCCESS"' in out.stdout
    assert 'Version="12.0' in out.stdout
    addr = url.split("//")[1].split(":")[0]
    assert host.socket(f"tcp://{addr}:{PORT}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{PORT}").is_listening
    if addr != "127.0.0.1":
        assert curl(host, f"http://127.0.0.1:{PORT}/STATUS").rc != 0


def _code(host, *args, user):
    return curl(host, "-o", "/dev/null", "-w", "%{http_code}", *args, user=user).stdout


def test_authorization_as_configured(host, url):
    file_url = f"{url}/RETRIEVE?file_id=upgrade/before-upgrade.bin"
    assert _code(host, file_url, user=None) == "401"
    assert _code(host, file_url, user="reader") == "200"
    upload = ["--data-binary", "@/etc/hostname", f"{url}/QARCHIVE?filename=r.bin&file_id=r.bin"]
    assert _code(host, *upload, user="reader") == "403"
    assert _code(host, *upload, user=None) == "401"
    # only the admin may change the server's state
    assert _code(host, f"{url}/OFFLINE", user="writer") == "403"
    wrong = host.run(
        "curl -s -o /dev/null -w '%%{http_code}' --user writer:wrong %s", file_url
    ).stdout
    assert wrong == "401"
    cfg = host.file(f"{ROOT}/cfg/ngamsServer.conf").content_string
    assert 'Enable="1" Exclude="STATUS"' in cfg
    assert _secret("ngas_writer") not in cfg  # base64, as NGAS reads it; file 0640 root:ngas


def test_archive_and_retrieve_byte_identical(host, url):
    host.run_test("dd if=/dev/urandom of=/tmp/t.json bs=1k count=700 status=none")
    file_id = "verify/run1/metrics.json"
    out = curl(
        host,
        "--fail-with-body",
        "--data-binary",
        "@/tmp/t.json",
        "--header",
        "Content-Type: application/json",
        f"{url}/QARCHIVE?filename={file_id}&file_id={file_id}&mime_type=application/json",
    )
    assert out.rc == 0, out.stdout + out.stderr
    assert 'Status="SUCCESS"' in out.stdout
    got = curl(host, "--fail", "-o", "/tmp/t.back", f"{url}/RETRIEVE?file_id={file_id}")
    assert got.rc == 0, got.stderr
    assert host.file("/tmp/t.back").sha256sum == host.file("/tmp/t.json").sha256sum
    assert host.file("/tmp/t.back").size == 700 * 1024


def test_file_from_before_the_upgrade_is_kept(host, url):
    file_url = f"{url}/RETRIEVE?file_id=upgrade/before-upgrade.bin"
    got = curl(host, "--fail", "-o", "/tmp/before.back", file_url)
    assert got.rc == 0, got.stderr
    before = host.file("/root/before-upgrade.bin").sha256sum
    assert host.file("/tmp/before.back").sha256sum == before


def test_empty_file_marker_mime_type_accepted(host, url):
    """What mlpipe's empty-file markers rely on (tasks_py/README.md, "Empty files on NGAS"):
    QARCHIVE takes application/x-mlpipe-empty (the role's Stream), QUERY's format and
    RETRIEVE's Content-Type give it back, and an empty body is still refused (411)."""
    mime = "application/x-mlpipe-empty"
    file_id = "verify/run1/code/pkg/__init__.py"
    host.run_test("printf 'mlpipe empty-file marker v1\\n' > /tmp/marker")
    out = curl(
        host,
        "--fail-with-body",
        "--data-binary",
        "@/tmp/marker",
        f"{url}/QARCHIVE?filename={file_id}&file_id={file_id}&mime_type={mime}",
    )
    assert out.rc == 0, out.stdout + out.stderr
    assert f'Format="{mime}"' in out.stdout
    query = curl(host, f"{url}/QUERY?query=files_like&like=verify/run1/code/%25&format=json")
    assert f'"format": "{mime}"' in query.stdout
    headers = curl(host, "-D", "-", "-o", "/tmp/marker.back", f"{url}/RETRIEVE?file_id={file_id}")
    assert f"Content-Type: {mime}" in headers.stdout
    assert host.file("/tmp/marker.back").sha256sum == host.file("/tmp/marker").sha256sum
    empty = ["--data-binary", "", f"{url}/QARCHIVE?filename=e&file_id=e&mime_type={mime}"]
    assert _code(host, *empty, user="writer") == "411"


def test_unknown_mime_type_refused(host, url):
    out = curl(
        host,
        "--data-binary",
        "@/etc/hostname",
        f"{url}/QARCHIVE?filename=x.weird&file_id=x.weird&mime_type=application/x-not-configured",
    )
    assert 'Status="FAILURE"' in out.stdout
    assert "Unknown mime type" in out.stdout


def test_config_and_database(host):
    cfg = host.file(f"{ROOT}/cfg/ngamsServer.conf")
    assert cfg.user == "root" and cfg.group == "ngas" and cfg.mode == 0o640
    assert cfg.content_string.startswith("<!--")  # ansible_managed header
    db = host.file(f"{ROOT}/ngas.sqlite")
    assert db.user == "ngas"
    query = "select count(*) from ngas_files where file_id like 'upgrade/%'"
    n = host.check_output(f'sqlite3 {ROOT}/ngas.sqlite "{query}"')
    assert int(n) >= 1
    for vol in ("volume1", "volume2"):
        info = host.file(f"{ROOT}/volumes/{vol}/.ngas_volume_info")
        assert info.exists and info.user == "ngas"
    disks = host.check_output(f'sqlite3 {ROOT}/ngas.sqlite "select count(*) from ngas_disks"')
    assert int(disks) == 2


def test_builds_and_marker(host):
    to = os.environ.get("NGAS_UPGRADE_TO", "master")
    frm = os.environ.get("NGAS_VERSION", "v12.0")
    venv = host.file("/opt/ngas/venv")
    assert venv.is_symlink
    assert re.search(rf"/opt/ngas/builds/{re.escape(to)}-[0-9a-f]{{10}}$", venv.linked_to)
    marker = host.file("/opt/ngas/venv/.mlpipe-ngas-build").content_string
    assert f"version={to}\n" in marker
    assert re.search(r"^commit=[0-9a-f]{40}$", marker, re.M), marker
    builds = host.check_output("ls /opt/ngas/builds").split()
    # the upgraded build plus one kept older build (ngas_keep_old_builds: 1)
    assert len(builds) == 2 and any(b.startswith(f"{frm}-") for b in builds), builds


def test_logs_written_and_rotated_on_restart(host):
    assert host.file("/var/log/ngas/ngas.nglog").user == "ngas"
    # NGAS rotates its log when it stops; the upgrade restarted it once
    rotated = host.check_output("ls /var/log/ngas").split()
    assert any(f.startswith("LOG-ROTATE-") for f in rotated), rotated
