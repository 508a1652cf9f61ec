"""The login node: sshd on the controller for the submit account, keys only, and a job
submitted over SSH with the account's key runs on a node in the shared work dir."""

import os
import time

import pytest
from cluster import NODES, member

testinfra_hosts = ["ansible://mlpipe-mol-slurm-ctl"]

USER = "slurm-submit"  # the role's default slurm_submit_user
UID = 2900  # and slurm_submit_uid
WORK_DIR = f"/shared/{USER}"
KEY = "/root/submit_ed25519"  # the scenario's private key, copied in by the fixture
KNOWN = "/root/login_known_hosts"
JOB_TIMEOUT = 120


@pytest.fixture(scope="module")
def ssh(host):
    """`ssh ... slurm-submit@127.0.0.1 CMD` on the controller, host key verified."""
    key = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "submit_ed25519")
    host.ansible("copy", f"src={key} dest={KEY} mode=0600", become=True, check=False)
    pub = host.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string.split()
    host.run("echo %s > %s", f"127.0.0.1 {pub[0]} {pub[1]}", KNOWN)
    options = [
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={KNOWN}", "-o", "IdentitiesOnly=yes",
    ]  # fmt: skip

    def run(*cmd, key=KEY, user=USER, extra=()):
        return host.run(" ".join(["ssh", "-i", key, *options, *extra, f"{user}@127.0.0.1", *cmd]))

    return run


def test_sshd_listens_and_is_enabled(host):
    assert host.socket("tcp://0.0.0.0:22").is_listening
    svc = host.service("ssh")
    assert svc.is_running
    assert svc.is_enabled


def test_sshd_takes_keys_only_and_no_root(host):
    settings = host.check_output("sshd -T").splitlines()
    for line in (
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "permitrootlogin no",
        "pubkeyauthentication yes",
    ):
        assert line in settings


def test_password_login_is_not_offered(ssh):
    # the server lists only publickey; no key given: refused without a password prompt
    methods = "PreferredAuthentications=password,keyboard-interactive"
    res = ssh("true", key="/dev/null", extra=["-o", methods])
    assert res.rc == 255
    assert "Permission denied (publickey)" in res.stderr


def test_root_is_refused_with_the_submit_key(ssh):
    res = ssh("true", user="root")
    assert res.rc == 255
    assert "Permission denied" in res.stderr


def test_the_account_cannot_change_its_keys(host):
    keys = host.file(f"/home/{USER}/.ssh/authorized_keys")
    assert keys.user == "root" and keys.mode == 0o644
    assert keys.content_string.count("restrict ssh-ed25519 ") == 1
    assert host.file(f"/home/{USER}/.ssh").user == "root"


@pytest.mark.parametrize("name", ["mlpipe-mol-slurm-ctl", *NODES])
def test_the_account_and_its_work_dir_on_every_member(name):
    one = member(name)
    account = one.user(USER)
    assert account.uid == UID and account.gid == UID
    assert account.shell == ("/bin/bash" if name.endswith("-ctl") else "/usr/sbin/nologin")
    work = one.file(WORK_DIR)
    assert work.is_directory and work.uid == UID and work.mode == 0o700
    assert one.file(f"{WORK_DIR}/job.env").content_string == "MLPIPE_MOLECULE=1\n"


# -u USER -D: a job id the controller gave before (to root's jobs of another test, when
# its state was reset) is not this job: only the submit account's rows count
def _state(host, job):
    rows = host.check_output("sacct -j %s -u %s -D -X -n -P -o State", job, USER).split()
    return rows[0].split()[0] if rows else ""


@pytest.mark.parametrize("target", NODES)
def test_the_submit_account_sbatches_over_ssh(host, ssh, target):
    res = ssh(
        "sbatch", "--parsable", "-w", target, f"--chdir={WORK_DIR}",
        f"--output={WORK_DIR}/job-%j.out", "--wrap", "\"'id -un; hostname'\"",
    )  # fmt: skip
    assert res.rc == 0, res.stderr
    job = res.stdout.strip().split(";")[0]
    deadline = time.monotonic() + JOB_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        state = _state(host, job)
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            break
        time.sleep(1)
    assert state == "COMPLETED", f"job {job} on {target}: {state or 'not in sacct'}"
    row = host.check_output("sacct -j %s -u %s -D -X -n -P -o User,NodeList", job, USER).strip()
    assert row == f"{USER}|{target}"
    # written on the node into the shared work dir, read on the login node over SSH
    out = ssh(f"cat {WORK_DIR}/job-{job}.out")
    assert out.rc == 0, out.stderr
    assert out.stdout.split() == [USER, target]
