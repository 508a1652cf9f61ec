"""Checks of the daliuge role on one island host and two node hosts.

Per host (testinfra's ``host``): the manager's unit runs as ``dlg`` on the
island and as the existing account ``mlpipe`` on the nodes (molecule.yml), is
hardened, listens on the private address only and answers ``GET /api``;
retention rules really delete old session directories and rotate the log.
Once for the island (``test_graph_*``): a two-app graph with a file drop
between them is deployed through the island manager's REST API, one app on
each node host, and must finish, each app having written its own host's name.
"""

import json
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import testinfra
import yaml

DEFAULTS = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "defaults" / "main.yml").read_text()
)
VENV = "/opt/daliuge/venv"
WORKSPACE = "/var/lib/daliuge/workspace"
LOGS = "/var/log/daliuge"
ISLAND_PORT, NODE_PORTS = 8001, (8000, 5555, 6666)
FINISHED, COMPLETED, APP_FINISHED = 4, 2, 2  # session, drop and app states (dlg.ddap_protocol)


def _kind(host):
    return "island" if "dlg_head" in host.ansible.get_variables()["group_names"] else "node"


def _user(host):
    """The manager's account: the role's own on the island, another tier's on the nodes."""
    return "dlg" if _kind(host) == "island" else "mlpipe"


def _address(host):
    return host.check_output("hostname -I").split()[0]


def test_service_runs_as_its_account(host):
    svc = host.service(f"daliuge-{_kind(host)}")
    assert svc.is_running
    assert svc.is_enabled
    pid = host.check_output(f"systemctl show -P MainPID daliuge-{_kind(host)}")
    assert host.check_output(f"ps -o user= -p {pid}") == _user(host)
    # the role creates its own account only; the nodes' existing one is left alone
    assert host.user("dlg").exists == (_kind(host) == "island")
    if _kind(host) == "node":
        assert host.user("mlpipe").home == "/var/lib/mlpipe"


def test_unit_is_hardened(host):
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            f"systemctl show daliuge-{_kind(host)} -p User -p NoNewPrivileges -p ProtectSystem "
            "-p ProtectHome -p PrivateTmp -p ReadWritePaths -p CapabilityBoundingSet "
            "-p RestrictNamespaces"
        ).splitlines()
    )
    assert props["User"] == _user(host)
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "strict"
    assert props["ProtectHome"] == "yes"
    assert props["PrivateTmp"] == "yes"
    assert props["CapabilityBoundingSet"] == ""
    assert props["RestrictNamespaces"] == "yes"
    writable = ["/var/lib/daliuge", "/var/log/daliuge"]
    if _kind(host) == "node":  # the workers' daliuge_read_write_paths (molecule.yml)
        writable.insert(0, "/srv/daliuge-extra")
    assert sorted(props["ReadWritePaths"].split()) == writable


def test_venv_is_the_pinned_release_and_read_only_for_the_service(host):
    code = 'import importlib.metadata as m; print(m.version("daliuge-engine"))'
    version = host.check_output(f"{VENV}/bin/python -c '{code}'")
    assert version == DEFAULTS["daliuge_version"]
    user = _user(host)
    assert host.run(f"runuser -u {user} -- test -w {VENV}/bin").rc != 0
    assert host.run(f"runuser -u {user} -- test -w {VENV}/lib/python3.11/site-packages").rc != 0


def test_listens_on_the_private_address_only(host):
    ports = (ISLAND_PORT,) if _kind(host) == "island" else NODE_PORTS
    listening = host.check_output("ss -Hltn").splitlines()
    for port in ports:
        local = [line.split()[3] for line in listening if line.split()[3].endswith(f":{port}")]
        assert local == [f"{_address(host)}:{port}"], (port, local)
    if _kind(host) == "island":  # the island manager opens no node-manager ports
        assert not [line for line in listening if line.split()[3].endswith((":5555", ":6666"))]


def test_api_answers(host):
    kind = _kind(host)
    port = ISLAND_PORT if kind == "island" else NODE_PORTS[0]
    answer = json.loads(host.check_output(f"curl -sf http://{_address(host)}:{port}/api"))
    if kind == "island":
        workers = host.ansible.get_variables()["groups"]["dlg_worker"]
        assert sorted(answer["hosts"]) == [f"{w}:8000:5555:6666" for w in workers]
    else:
        assert isinstance(answer["sessions"], list)


def test_old_session_directories_are_removed(host):
    old, new = f"{WORKSPACE}/molecule-old", f"{WORKSPACE}/molecule-new"
    for path in (old, new):
        host.check_output(f"runuser -u {_user(host)} -- mkdir -p {path}/sub")
        host.check_output(f"runuser -u {_user(host)} -- sh -c 'echo x > {path}/sub/F_F'")
    host.check_output(f"touch -d '8 days ago' {old}/sub/F_F {old}/sub {old}")
    host.check_output("systemd-tmpfiles --clean /etc/tmpfiles.d/daliuge.conf")
    assert not host.file(old).exists
    assert host.file(f"{new}/sub/F_F").exists
    host.check_output(f"rm -r {new}")


def test_log_file_is_rotated(host):
    name = "DIM" if _kind(host) == "island" else "NM"
    log = f"{LOGS}/dlg{name}.{host.check_output('uname -n')}.log"
    assert host.file(log).user == _user(host)
    host.check_output("logrotate -f /etc/logrotate.d/daliuge")
    rotated = host.file(f"{log}.1")
    assert rotated.exists and rotated.user == _user(host) and rotated.size > 0
    assert host.file(log).exists and host.file(log).size == 0  # copytruncate: same file
    assert host.service(f"daliuge-{_kind(host)}").is_running


# --- a graph over both node hosts, submitted to the island manager ---

SUBMIT = textwrap.dedent(
    """
    import json, sys, time, urllib.parse, urllib.request

    dim, sid = sys.argv[1], sys.argv[2]

    def call(path, data=None, json_body=None):
        headers = {}
        if json_body is not None:
            data, headers = json.dumps(json_body).encode(), {"Content-Type": "application/json"}
        elif data is not None:
            data = urllib.parse.urlencode(data).encode()
        req = urllib.request.Request(dim + path, data=data, headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    first, second = sorted(call("/api/nodes"))
    island = dim.split("//")[1].split(":")[0]
    bash = "dlg.apps.bash_shell_app.BashShellApp"
    filedrop = "dlg.data.drops.file.FileDROP"
    graph = [
        {"oid": "A", "categoryType": "Application", "dropclass": bash, "node": first,
         "command": "uname -n > {F}; echo $DALIUGE_TEST_MARK > /srv/daliuge-extra/$DLG_SESSION_ID",
         "island": island, "outputs": ["F"]},
        {"oid": "F", "categoryType": "Data", "dropclass": filedrop,
         "node": first, "island": island, "producers": ["A"], "consumers": ["B"]},
        {"oid": "B", "categoryType": "Application", "dropclass": bash, "node": second,
         "command": "uname -n > {G}; touch /srv/daliuge-other/$DLG_SESSION_ID || true",
         "island": island, "inputs": ["F"], "outputs": ["G"]},
        {"oid": "G", "categoryType": "Data", "dropclass": filedrop,
         "node": second, "island": island, "producers": ["B"]},
    ]
    call("/api/sessions", json_body={"sessionId": sid})
    call(f"/api/sessions/{sid}/graph/append", json_body=graph)
    call(f"/api/sessions/{sid}/deploy", data={"completed": "A"})
    deadline = time.monotonic() + 90
    while True:
        status = call(f"/api/sessions/{sid}/status")
        drops = call(f"/api/sessions/{sid}/graph/status")
        if all(s >= 4 for s in status.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(json.dumps({"nodes": [first, second], "status": status, "drops": drops}))
    """
)


@pytest.fixture(scope="module")
def hosts(request):
    """Every host of the scenario by inventory name."""
    found = testinfra.get_hosts(
        ["ansible://all"], ansible_inventory=request.config.option.ansible_inventory
    )
    return {h.ansible.get_variables()["inventory_hostname"]: h for h in found}


@pytest.fixture(scope="module")
def graph_run(hosts):
    (head,) = (h for h in hosts.values() if _kind(h) == "island")
    sid = f"molecule-{uuid.uuid4().hex[:8]}"
    dim = f"http://{_address(head)}:{ISLAND_PORT}"
    start = time.monotonic()
    res = head.run(f"{VENV}/bin/python - {dim} {sid} <<'EOF'\n{SUBMIT}\nEOF")
    assert res.rc == 0, res.stderr
    return sid, json.loads(res.stdout.strip().splitlines()[-1]), time.monotonic() - start


def test_graph_finishes_on_both_nodes(graph_run):
    sid, run, seconds = graph_run
    assert len(run["status"]) == 2, run
    assert set(run["status"].values()) == {FINISHED}, run
    assert {oid: d["status"] for oid, d in run["drops"].items()} == dict.fromkeys("AFBG", COMPLETED)
    assert run["drops"]["A"]["execStatus"] == run["drops"]["B"]["execStatus"] == APP_FINISHED
    assert seconds < 90


def test_graph_apps_ran_on_their_own_hosts(hosts, graph_run):
    sid, run, _ = graph_run
    for node in run["nodes"]:
        name = node.split(":")[0]
        worker = hosts[name]
        files = worker.check_output(
            f"find {WORKSPACE}/{sid} -type f -user {_user(worker)} -name '*_*'"
        ).split()
        contents = {Path(f).name: worker.file(f).content_string.strip() for f in files}
        # the app placed on this node wrote this host's name into its output drop
        assert name in contents.values(), (name, contents)


def test_graph_apps_get_the_environment_and_only_the_writable_paths(hosts, graph_run):
    sid, run, _ = graph_run
    first, second = (hosts[node.split(":")[0]] for node in run["nodes"])
    # daliuge_environment reached the application, '%' unexpanded by systemd
    assert first.file(f"/srv/daliuge-extra/{sid}").content_string == "100%\n"
    # a world-writable directory outside ReadWritePaths is read-only for it
    assert not second.file(f"/srv/daliuge-other/{sid}").exists
    assert second.check_output("stat -c %a /srv/daliuge-other") == "777"
