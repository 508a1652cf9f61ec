"""The firewall role on two hosts: a (firewall on) and b (turned off by side_effect.yml).

Every reachability check is a real TCP connection from the other container to a
listener of prepare.yml (8080-8083).
"""

import json
import os

import pytest
import testinfra

A, B = "mlpipe-mol-firewall-a", "mlpipe-mol-firewall-b"
CONNECT = (
    "python3 -c 'import socket, sys; "
    "socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)' {} {}"
)


def member(name):
    return testinfra.get_host(
        f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )


@pytest.fixture(scope="module")
def a():
    return member(A)


@pytest.fixture(scope="module")
def b():
    return member(B)


def reaches(client, server_name, port):
    return client.run(CONNECT.format(server_name, port)).rc == 0


def tables(host):
    out = json.loads(host.check_output("nft -j list tables"))
    return {(t["table"]["family"], t["table"]["name"]) for t in out["nftables"] if "table" in t}


def test_rules_on_a_decide_what_b_reaches(b):
    assert reaches(b, A, 8080), "8080 is open to b's address"
    assert not reaches(b, A, 8081), "8081 is open only to 192.0.2.1 and 2001:db8::/32"
    assert reaches(b, A, 8082), "8082 is open to any"
    assert not reaches(b, A, 8083), "8083 has no sources"


def test_loopback_and_names_still_work_on_a(a):
    # loopback reaches even the closed port; Docker's DNS (its own rules in the
    # container's netns) still resolves: the ruleset was not flushed
    assert reaches(a, "127.0.0.1", 8083)
    assert a.run(f"getent hosts {B}").rc == 0


def test_input_policy_drop_in_the_mlpipe_table_only(a):
    chain = json.loads(a.check_output("nft -j list chain inet mlpipe input"))
    hooks = [c["chain"] for c in chain["nftables"] if "chain" in c]
    assert hooks[0]["hook"] == "input" and hooks[0]["policy"] == "drop", hooks
    assert tables(a) >= {("inet", "mlpipe"), ("inet", "keepme")}


def test_service_enabled_and_stop_reload_touch_only_the_table(a):
    svc = a.service("nftables")
    assert svc.is_enabled and svc.is_running
    reload = a.run("systemctl reload nftables")
    journal = a.run("journalctl -u nftables --no-pager -n 30").stdout
    if reload.rc != 0 and "status=219/CGROUP" in journal:
        # the container's systemd could not put the reload process into a cgroup (seen
        # once in CI on a cgroup v1 host): the test harness, not the role; once more
        reload = a.run("systemctl reload nftables")
        journal = a.run("journalctl -u nftables --no-pager -n 30").stdout
    assert reload.rc == 0, f"reload failed: {reload.stderr}\n{journal}"
    assert tables(a) >= {("inet", "mlpipe"), ("inet", "keepme")}
    a.check_output("systemctl stop nftables")
    try:
        assert ("inet", "mlpipe") not in tables(a)
        assert ("inet", "keepme") in tables(a), "stopping the service flushed other tables"
    finally:
        a.check_output("systemctl start nftables")
    assert ("inet", "mlpipe") in tables(a)


def test_firewall_off_removes_the_table_on_b(a, b):
    assert ("inet", "mlpipe") not in tables(b)
    svc = b.service("nftables")
    assert not svc.is_enabled and not svc.is_running
    assert reaches(a, B, 8081) and reaches(a, B, 8083)
