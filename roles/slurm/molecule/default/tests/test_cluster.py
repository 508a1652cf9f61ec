"""The cluster as a whole, from the controller: daemons, jobs, accounting."""

import time

import pytest
from cluster import NODES, member

testinfra_hosts = ["ansible://mlpipe-mol-slurm-ctl"]

JOB_TIMEOUT = 120  # seconds a one-line job may take from sbatch to COMPLETED in sacct


@pytest.mark.parametrize("service", ["mariadb", "slurmdbd", "slurmctld"])
def test_controller_services_running_and_enabled(host, service):
    svc = host.service(service)
    assert svc.is_running
    assert svc.is_enabled


def test_slurmd_running_and_enabled_on_nodes(node):
    svc = node.service("slurmd")
    assert svc.is_running
    assert svc.is_enabled


@pytest.mark.parametrize("daemon", ["slurmctld", "slurmdbd"])
def test_controller_daemons_run_as_slurm(host, daemon):
    assert host.check_output("ps -o user= -C %s", daemon).split() == ["slurm"]


def test_database_on_loopback_only(host):
    listening = host.check_output("ss -Hltn 'sport = :3306'")
    assert [line.split()[3] for line in listening.splitlines()] == ["127.0.0.1:3306"]


def test_every_node_is_idle_with_its_hardware(host, node):
    # CPUs and RealMemory come from the node's facts: they match what slurmd detects there
    detected = dict(kv.split("=", 1) for kv in node.check_output("slurmd -C").split()[:8])
    name = detected["NodeName"]
    shown = dict(
        kv.split("=", 1)
        for kv in host.check_output("scontrol -o show node %s", name).split()
        if "=" in kv
    )
    assert shown["State"] == "IDLE"
    assert shown["CPUTot"] == detected["CPUs"]
    assert shown["RealMemory"] == detected["RealMemory"]


def test_partitions_from_variables(host):
    short = host.check_output("scontrol -o show partition short")
    assert "MaxTime=00:10:00" in short
    assert "MaxNodes=1" in short
    assert "Default=YES" in host.check_output("scontrol -o show partition batch")


def test_cluster_registered_in_accounting(host):
    clusters = host.check_output("sacctmgr --noheader --parsable2 list cluster format=cluster")
    assert clusters.split() == ["mlpipe"]


def _state(host, job):
    rows = host.check_output("sacct -j %s -X -n -P -o State", job).split()
    return rows[0].split()[0] if rows else ""


@pytest.mark.parametrize("target", NODES)
def test_batch_job_completes_and_is_accounted(host, target):
    job = host.check_output(
        "sbatch --parsable --wait-all-nodes=1 -w %s -o /tmp/job-%%j.out --wrap hostname", target
    ).split(";")[0]
    deadline = time.monotonic() + JOB_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        state = _state(host, job)
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            break
        time.sleep(1)
    assert state == "COMPLETED", f"job {job} on {target}: {state or 'not in sacct'}"
    exit_code = host.check_output("sacct -j %s -X -n -P -o ExitCode", job)
    assert exit_code.strip() == "0:0"
    assert host.check_output("sacct -j %s -X -n -P -o NodeList", job).strip() == target
    # it ran there: its output is on that node
    assert member(target).file(f"/tmp/job-{job}.out").content_string.strip() == target
