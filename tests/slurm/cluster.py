"""``slurm_cluster`` (session): a real Slurm on 127.0.0.1, started as root, torn down after.

munged, MariaDB (a temporary datadir, TCP on a free loopback port, one account
``slurm`` with rights on its accounting database only), slurmdbd, slurmctld and
one slurmd (node ``mlpipe-test``), each in the foreground under this process, on
free ports, with their state, sockets and logs in a temp dir. The one thing
outside it is munged's default socket ``/run/munge/munge.socket.2``: Slurm's
connection to slurmdbd (sacct, sacctmgr) only uses that one, so a munged
already answering there is reused, else one is started there with a key of
its own and removed at the end. The plugins are those that work without a
cgroup hierarchy of their own (``proctrack/linuxproc``, ``task/none``,
``jobacct_gather/none``; ``/work/shared/slurm/NOTES.md``).

One such cluster runs on a host at a time (munged's socket is host-wide): a
second test session waits for the first's (``/tmp/mlpipe-slurm-tests.lock``).
Readiness is polled, never slept: ``mariadb-admin ping``, ``sacctmgr show
cluster``, ``scontrol ping`` and the node ``idle`` in ``sinfo``.

Clients find it through ``SLURM_CONF`` (``cluster.env``); the fixture does not
set it in ``os.environ``: tests use ``monkeypatch.setenv`` or ``cluster.env``.
Needs root and the Debian packages ``slurm-wlm munge slurmdbd mariadb-server``
(``make host-tools`` installs them); without them the fixture fails naming them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from procs import free_port, stop_process, wait_until

COMMANDS = {
    "munged": "munge",
    "munge": "munge",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "mariadb-admin": "mariadb-server",
    "slurmdbd": "slurmdbd",
    "slurmctld": "slurm-wlm",
    "slurmd": "slurm-wlm",
    "sbatch": "slurm-wlm",
    "sacct": "slurm-wlm",
}
NODE = "mlpipe-test"
CLUSTER = "mlpipe-test"
PARTITION = "debug"
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
LOCK = "/tmp/mlpipe-slurm-tests.lock"
LOCK_TIMEOUT = 1800


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    node: str = NODE
    partition: str = PARTITION
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list, repr=False)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster (output captured, not checked)."""
        return subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, **self.env}, check=False
        )

    def log(self, daemon: str) -> str:
        path = self.root / "log" / f"{daemon}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _munge_answers() -> bool:
    """A munged answers on the default socket (a credential encodes and decodes)."""
    if not MUNGE_SOCKET.exists():
        return False
    cred = subprocess.run(["munge", "-n"], capture_output=True, check=False)
    if cred.returncode != 0:
        return False
    return subprocess.run(["unmunge"], input=cred.stdout, capture_output=True).returncode == 0


def _missing() -> list[str]:
    return sorted({pkg for cmd, pkg in COMMANDS.items() if shutil.which(cmd) is None})


def _start(
    cluster: SlurmCluster, name: str, cmd: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen:
    log = cluster.root / "log" / f"{name}.out"
    proc = subprocess.Popen(
        cmd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # Ctrl-C in pytest does not hit the daemons first
    )
    cluster.procs.append((name, proc))
    return proc


def _ok(cluster: SlurmCluster, *cmd: str) -> bool:
    return cluster.run(*cmd).returncode == 0


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    path.chmod(mode)


def start_cluster(root: Path) -> SlurmCluster:
    """Start every daemon under ``root``; the caller stops them with :func:`stop_cluster`."""
    for sub in ("log", "state", "spool", "run", "db", "munge"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cluster = SlurmCluster(root=root, conf=root / "slurm.conf")
    try:
        _start_all(cluster)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def _start_all(cluster: SlurmCluster) -> None:
    root = cluster.root
    host = socket.gethostname().split(".")[0]
    ports = {k: free_port() for k in ("ctld", "slurmd", "dbd", "mysql")}

    # munge: Slurm's persistent connection to slurmdbd (sacct, sacctmgr) only uses munged's
    # default socket, so the cluster uses a munged answering there, or starts one with a key
    # of its own (stopped and its socket removed at the end)
    if not _munge_answers():
        key = root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        munged = _start(
            cluster,
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={MUNGE_SOCKET}",
                f"--pid-file={root / 'munge' / 'munged.pid'}",
                f"--log-file={root / 'log' / 'munged.log'}",
                f"--seed-file={root / 'munge' / 'munged.seed'}",
            ],
        )
        wait_until(_munge_answers, "munged", munged, log=root / "log" / "munged.log")

    # MariaDB: temporary datadir, loopback TCP, one least-privilege account
    datadir = root / "db" / "data"
    subprocess.run(
        [
            "mariadb-install-db",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    db_pass = secrets.token_urlsafe(16)
    init = root / "db" / "init.sql"
    _write(
        init,
        f"CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '{db_pass}';\n"
        "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';\n",
        0o600,
    )
    dbsock = root / "db" / "mysqld.sock"
    mariadb = _start(
        cluster,
        "mariadbd",
        [
            "mariadbd",
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            f"--socket={dbsock}",
            f"--port={ports['mysql']}",
            "--bind-address=127.0.0.1",
            f"--pid-file={root / 'db' / 'mysqld.pid'}",
            f"--init-file={init}",
            "--innodb-buffer-pool-size=32M",
            f"--log-error={root / 'log' / 'mariadbd.log'}",
        ],
    )
    wait_until(
        lambda: _ok(cluster, "mariadb-admin", f"--socket={dbsock}", "--user=root", "ping"),
        "mariadbd",
        mariadb,
        log=root / "log" / "mariadbd.log",
    )

    # slurmdbd
    _write(
        root / "slurmdbd.conf",
        "\n".join(
            [
                "AuthType=auth/munge",
                f"DbdHost={host}",  # slurmdbd only serves as the host it names
                "DbdAddr=127.0.0.1",
                f"DbdPort={ports['dbd']}",
                "SlurmUser=root",
                f"LogFile={root / 'log' / 'slurmdbd.log'}",
                f"PidFile={root / 'run' / 'slurmdbd.pid'}",
                "StorageType=accounting_storage/mysql",
                "StorageHost=127.0.0.1",
                f"StoragePort={ports['mysql']}",
                "StorageUser=slurm",
                f"StoragePass={db_pass}",
                "StorageLoc=slurm_acct_db",
                "",
            ]
        ),
        0o600,
    )
    _write(
        cluster.conf,
        "\n".join(
            [
                f"ClusterName={CLUSTER}",
                f"SlurmctldHost={host}(127.0.0.1)",
                f"SlurmctldPort={ports['ctld']}",
                f"SlurmdPort={ports['slurmd']}",
                "SlurmUser=root",
                "AuthType=auth/munge",
                f"StateSaveLocation={root / 'state'}",
                f"SlurmdSpoolDir={root / 'spool' / '%n'}",
                f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}",
                f"SlurmdPidFile={root / 'run' / 'slurmd.pid'}",
                f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/slurmdbd",
                "AccountingStorageHost=127.0.0.1",
                f"AccountingStoragePort={ports['dbd']}",
                "JobCompType=jobcomp/none",
                "AccountingStoreFlags=job_env",  # sacct --env-vars: what a job was given
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_CPU",
                "MpiDefault=none",
                "ReturnToService=2",
                "SchedulerType=sched/backfill",
                # a job over its limit is killed at the next check, not 30 s later
                "SchedulerParameters=bf_interval=5",
                "MinJobAge=300",
                "KillWait=5",
                "InactiveLimit=0",
                # a node whose slurmd stops answering is DOWN (its jobs NODE_FAIL) in seconds
                "SlurmdTimeout=10",
                f"NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={host} CPUs=2 RealMemory=2000",
                f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=60 State=UP",
                "",
            ]
        ),
    )
    env = cluster.env
    start_slurmdbd(cluster)
    added = cluster.run("sacctmgr", "-i", "add", "cluster", CLUSTER)
    assert added.returncode == 0, added.stdout + added.stderr
    ctld = _start(cluster, "slurmctld", ["slurmctld", "-D", "-i"], env)
    wait_until(
        lambda: _ok(cluster, "scontrol", "ping"),
        "slurmctld",
        ctld,
        log=root / "log" / "slurmctld.log",
    )
    start_slurmd(cluster)


def start_slurmdbd(cluster: SlurmCluster) -> None:
    """Start slurmdbd (it reads slurmdbd.conf next to slurm.conf); ready when sacctmgr answers."""
    dbd = _start(cluster, "slurmdbd", ["slurmdbd", "-D"], cluster.env)
    wait_until(
        lambda: _ok(cluster, "sacctmgr", "-n", "-P", "show", "cluster"),
        "slurmdbd",
        dbd,
        log=cluster.root / "log" / "slurmdbd.log",
    )


def stop_daemon(cluster: SlurmCluster, daemon: str) -> None:
    """Stop one daemon of the cluster (SIGTERM), e.g. slurmdbd to make sacct fail."""
    for name, proc in list(cluster.procs):
        if name == daemon:
            stop_process(proc)
            cluster.procs.remove((name, proc))


def start_slurmd(cluster: SlurmCluster) -> None:
    """Start the node's slurmd; ready when the node is idle (also after a node failure)."""
    slurmd = _start(cluster, "slurmd", ["slurmd", "-D", "-N", NODE], cluster.env)
    wait_until(
        lambda: cluster.run("sinfo", "-h", "-n", NODE, "-o", "%t").stdout.strip() == "idle",
        "slurmd (node idle in sinfo)",
        slurmd,
        log=cluster.root / "log" / "slurmd.log",
    )


def kill_slurmd(cluster: SlurmCluster) -> None:
    """SIGKILL the node's slurmd (its running jobs' slurmstepd go on, as on a real node)."""
    for name, proc in list(cluster.procs):
        if name == "slurmd":
            proc.kill()
            proc.wait()
            cluster.procs.remove((name, proc))


def stop_cluster(cluster: SlurmCluster) -> None:
    """Stop the daemons in reverse start order (jobs first die with slurmd)."""
    if any(name == "slurmctld" and p.poll() is None for name, p in cluster.procs):
        cluster.run("scancel", "--full", "--partition", cluster.partition)
    for name, proc in reversed(cluster.procs):
        stop_process(proc)
        if name == "munged":
            MUNGE_SOCKET.unlink(missing_ok=True)
    cluster.procs.clear()


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A real Slurm (with accounting) on loopback for this test session."""
    missing = _missing()
    if missing:
        pytest.fail(
            "the Slurm tests need the Debian package(s) "
            f"{' '.join(missing)}: run `make host-tools` (as root) or apt-get install them"
        )
    if os.geteuid() != 0:
        pytest.fail(
            "the Slurm test cluster starts slurmd, which runs jobs as their user: run as root"
        )
    # munged's default socket is host-wide: one test cluster on this host at a time
    lock = FileLock(LOCK)
    try:
        lock.acquire(timeout=LOCK_TIMEOUT)
    except Timeout:
        pytest.fail(f"another test session's Slurm cluster held {LOCK} for {LOCK_TIMEOUT}s")
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
        try:
            yield cluster
        finally:
            stop_cluster(cluster)
    finally:
        lock.release()
