"""``running_login_node``: a private sshd on 127.0.0.1, the "login node" of ``slurm_cluster``.

Debian's ``openssh-server`` (``make host-tools`` installs it) run in the
foreground with a config, host key, client key and ``authorized_keys`` of its
own in a temp dir, on a free port, key authentication only. Its sessions get
``SLURM_CONF`` of the test cluster (``SetEnv``), so ``sbatch`` & co. run over
SSH against the same Slurm as the local tests. Ready when a client completes
the SSH handshake and authenticates (``ssh ... true``), stopped after the session.
``known_hosts`` holds its host key (what ``ssh-keyscan`` would add).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from procs import free_port, stop_process, wait_until

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


@dataclass
class LoginNode:
    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    root: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log(self) -> str:
        return (self.root / "sshd.log").read_text(errors="replace")

    def ssh(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` on the login node with OpenSSH's client (host key checked)."""
        return subprocess.run(
            [
                "ssh",
                "-p",
                str(self.port),
                "-i",
                str(self.key_file),
                "-o",
                f"UserKnownHostsFile={self.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                f"{self.user}@{self.host}",
                *cmd,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def running_login_node(slurm_cluster, tmp_path_factory) -> Iterator[LoginNode]:
    """The sshd, for a session fixture ``login_node`` (tests/unit/test_slurm_remote.py)."""
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        pytest.fail(
            "login_node: /usr/sbin/sshd or ssh-keygen missing; install the Debian package "
            "openssh-server (make host-tools)"
        )
    root = tmp_path_factory.mktemp("sshd")
    root.chmod(0o755)
    _keygen(root / "host_key")
    _keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    (root / "authorized_keys").chmod(0o600)
    port = free_port()
    host_pub = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (root / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'host_key'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                f"PidFile {root / 'sshd.pid'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "X11Forwarding no",
                "AllowTcpForwarding yes",  # a jump host's direct-tcpip channels
                "LogLevel DEBUG1",  # sshd.log shows them
                f"SetEnv SLURM_CONF={slurm_cluster.conf}",
                f"Subsystem sftp {SFTP_SERVER}",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    log = root / "sshd.log"
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    node = LoginNode(
        "127.0.0.1", port, "root", root / "client_key", root / "known_hosts", root, proc
    )
    try:
        wait_until(lambda: node.ssh("true").returncode == 0, "sshd", proc=proc, timeout=30, log=log)
        yield node
    finally:
        stop_process(proc)
