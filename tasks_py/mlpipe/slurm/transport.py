"""Where the Slurm commands run and the job files live: here, or a login node over SSH.

:class:`LocalTransport` runs ``sbatch``/``sacct``/... as subprocesses and uses
this host's filesystem (the executor's shared ``work_dir``). :class:`SshTransport`
runs them on ``[slurm] host`` through `fabric` (paramiko) and reads and writes
the job files in ``remote_work_dir`` over SFTP.

Host keys are always verified against ``[slurm] known_hosts`` (for the login node
and the jump host): an unknown or changed key is a :class:`HostKeyError`
naming the host, the file and how to add the key; nothing is ever added
automatically. Connection, authentication and timeout failures are
:class:`SshError` (a :class:`~mlpipe.slurm.cli.SlurmError`), never an answer
about a job.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import stat
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from mlpipe.errors import BadInput, MlpipeError

if TYPE_CHECKING:
    from mlpipe.config import SlurmConfig


class TransportError(MlpipeError):
    """A command could not be run (missing, timed out, connection lost)."""


class SshError(TransportError):
    """The login node cannot be reached, refused the key, or stopped answering."""


class HostKeyError(BadInput):
    """The login node's (or jump host's) key is unknown or changed: fix known_hosts."""


class Transport(Protocol):
    """What the executor and :class:`~mlpipe.slurm.cli.SlurmCli` need from a host."""

    where: str  # "this host" or "user@host:port", for messages

    def run(
        self, cmd: Sequence[str], timeout: float, cwd: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...

    def missing(self, commands: Sequence[str]) -> list[str]: ...

    def is_dir(self, path: str) -> bool: ...

    def mkdir(self, path: str) -> None: ...

    def write_text(self, path: str, text: str) -> None: ...

    def read_text(self, path: str) -> str: ...  # FileNotFoundError when missing

    def read_from(self, path: str, offset: int) -> bytes | None: ...  # None when missing

    def remove(self, path: str) -> None: ...

    def put_tree(self, local: Path, remote: str) -> None: ...

    def get_tree(self, remote: str, local: Path) -> None: ...

    def close(self) -> None: ...


class LocalTransport:
    """This host: subprocesses and the local filesystem."""

    where = "this host"

    def run(
        self, cmd: Sequence[str], timeout: float, cwd: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                list(cmd), capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
            )
        except FileNotFoundError:
            raise TransportError(
                f"{cmd[0]}: command not found (is this a Slurm submit host?)"
            ) from None
        except subprocess.TimeoutExpired:
            raise TransportError(
                f"{' '.join(cmd[:2])}: no answer within {timeout:.0f}s (is slurmctld up?)"
            ) from None

    def missing(self, commands: Sequence[str]) -> list[str]:
        return [c for c in commands if shutil.which(c) is None]

    def is_dir(self, path: str) -> bool:
        return Path(path).is_dir()

    def mkdir(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)

    def write_text(self, path: str, text: str) -> None:
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text)
        tmp.replace(target)

    def read_text(self, path: str) -> str:
        return Path(path).read_text(errors="replace")

    def read_from(self, path: str, offset: int) -> bytes | None:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return fh.read()
        except FileNotFoundError:
            return None

    def remove(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def put_tree(self, local: Path, remote: str) -> None:
        if Path(remote) != local:
            shutil.copytree(local, remote, dirs_exist_ok=True)

    def get_tree(self, remote: str, local: Path) -> None:
        if Path(remote) != local:
            shutil.copytree(remote, local, dirs_exist_ok=True)

    def close(self) -> None:
        return None


def _split_host(text: str, default_user: str) -> tuple[str, str, int]:
    """``[user@]host[:port]`` -> (user, host, port)."""
    user, _, rest = text.rpartition("@")
    host, _, port = rest.partition(":")
    return user or default_user, host, int(port) if port else 22


def check_config(section: SlurmConfig, where: Callable[[str], str]) -> None:
    """BadInput naming the ``[slurm]`` key for unusable SSH settings (files are checked later)."""
    if not 0 < section.port < 65536:
        raise BadInput(f"{where('port')}: a TCP port 1-65535, got {section.port}")
    if section.connect_timeout <= 0:
        raise BadInput(f"{where('connect_timeout')}: must be > 0 seconds")
    if section.jump_host:
        try:
            _, host, port = _split_host(section.jump_host, "")
        except ValueError:
            host, port = "", 0
        if not host or not 0 < port < 65536:
            raise BadInput(f"{where('jump_host')}: [user@]host[:port], got {section.jump_host!r}")
    if not section.host:
        for key in ("jump_host", "remote_work_dir"):
            if getattr(section, key):
                raise BadInput(f"{where(key)}: set only with host (the login node); host is empty")
        return
    for key, what in (
        ("known_hosts", "the known_hosts file holding the login node's host key"),
        ("key_file", "the private key file of the account on the login node"),
        ("remote_work_dir", "a directory on the cluster's shared filesystem"),
    ):
        if not getattr(section, key):
            raise BadInput(f"{where(key)}: required with host {section.host}: {what}")
    if not section.remote_work_dir.startswith("/"):
        raise BadInput(
            f"{where('remote_work_dir')}: an absolute path on the cluster, "
            f"got {section.remote_work_dir!r}"
        )


class SshTransport:
    """The login node ``[slurm] host`` over SSH (fabric), host keys checked, key auth only."""

    def __init__(self, config: SlurmConfig) -> None:
        self.config = config
        self.user = config.user or _local_user()
        self.where = f"{self.user}@{config.host}:{config.port}"
        self._conn: Any = None
        self._sftp: Any = None

    # ------------------------------------------------------------ connection
    def _connection(self, user: str, host: str, port: int, gateway: Any = None) -> Any:
        import fabric
        import paramiko

        cfg = self.config
        conn = fabric.Connection(
            host,
            user=user,
            port=port,
            gateway=gateway,
            connect_timeout=int(max(1, cfg.connect_timeout)),
            config=fabric.Config(overrides={"load_ssh_configs": False}),
            connect_kwargs={
                "key_filename": [cfg.key_file],
                "look_for_keys": False,
                "allow_agent": False,
                "banner_timeout": cfg.connect_timeout,
                "auth_timeout": cfg.connect_timeout,
                "channel_timeout": cfg.connect_timeout,
            },
        )
        # verify host keys against known_hosts only; never add one (fabric's default does)
        conn.client.load_host_keys(cfg.known_hosts)
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return conn

    def _open(self) -> Any:
        if self._conn is not None and self._conn.is_connected:
            return self._conn
        import paramiko

        cfg = self.config
        for key in ("known_hosts", "key_file"):
            if not Path(getattr(cfg, key)).is_file():
                raise BadInput(
                    f"[slurm] {key} {getattr(cfg, key)} (env MLPIPE_SLURM_{key.upper()}): "
                    "no such file"
                )
        gateway = None
        hops = [(self.user, cfg.host, cfg.port)]
        if cfg.jump_host:
            jump = _split_host(cfg.jump_host, self.user)
            gateway = self._connection(*jump)
            hops.insert(0, jump)
        conn = self._connection(self.user, cfg.host, cfg.port, gateway)
        try:
            conn.open()
        except paramiko.BadHostKeyException as exc:
            raise HostKeyError(
                f"SSH to {exc.hostname}: its host key CHANGED (it is not the one in "
                f"[slurm] known_hosts {cfg.known_hosts}); if the cluster's admins confirm the "
                f"new fingerprint, replace the host's line in that file (ssh-keygen -R "
                f"{exc.hostname} -f {cfg.known_hosts}, then ssh-keyscan as below), else do "
                "not connect"
            ) from None
        except paramiko.SSHException as exc:
            text = str(exc)
            if "not found in known_hosts" in text:
                host = text.split("'")[1] if "'" in text else cfg.host
                bare, port = _bare(host, hops)
                raise HostKeyError(
                    f"SSH to {host}: its host key is not in [slurm] known_hosts "
                    f"{cfg.known_hosts} (env MLPIPE_SLURM_KNOWN_HOSTS); nothing was "
                    f"connected. Add it after checking its fingerprint with the cluster's "
                    f"admins: ssh-keyscan -p {port} {bare} >> {cfg.known_hosts}"
                ) from None
            if isinstance(exc, paramiko.AuthenticationException):
                raise SshError(
                    f"SSH to {self.where}: authentication with [slurm] key_file {cfg.key_file} "
                    f"failed ({text}); is its public key in the account's authorized_keys?"
                ) from None
            raise SshError(f"SSH to {self.where}: {text or exc.__class__.__name__}") from None
        except (OSError, EOFError) as exc:
            via = f" via {cfg.jump_host}" if cfg.jump_host else ""
            raise SshError(
                f"SSH to {self.where}{via}: cannot connect within {cfg.connect_timeout:.0f}s "
                f"({exc.__class__.__name__}: {exc}); check [slurm] host/port and the network"
            ) from None
        self._conn = conn
        self._sftp = None
        return conn

    def _sftp_client(self) -> Any:
        conn = self._open()
        if self._sftp is None:
            try:
                self._sftp = conn.sftp()
                self._sftp.get_channel().settimeout(self.config.command_timeout)
            except Exception as exc:  # noqa: BLE001 - paramiko raises several kinds
                raise SshError(f"SFTP to {self.where}: {exc}") from None
        return self._sftp

    def _files(self, what: str, action: Callable[..., Any], *args: Any) -> Any:
        """``action(sftp, *args)``; a lost connection is an SshError (FileNotFoundError passes)."""
        try:
            return action(self._sftp_client(), *args)
        except FileNotFoundError:
            raise
        except (OSError, EOFError) as exc:
            self._drop()
            raise SshError(
                f"SFTP {what} on {self.where}: {exc.__class__.__name__}: {exc}"
            ) from None

    def _drop(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                conn.close()

    def close(self) -> None:
        self._drop()

    # ------------------------------------------------------------ commands
    def run(
        self, cmd: Sequence[str], timeout: float, cwd: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        from invoke.exceptions import CommandTimedOut

        line = " ".join(shlex.quote(c) for c in cmd)
        if cwd:
            line = f"cd {shlex.quote(cwd)} && {line}"
        conn = self._open()
        try:
            res = conn.run(line, hide=True, warn=True, timeout=timeout, in_stream=False)
        except CommandTimedOut:
            self._drop()
            raise SshError(
                f"{' '.join(cmd[:2])} on {self.where}: no answer within {timeout:.0f}s"
            ) from None
        except (OSError, EOFError) as exc:
            self._drop()
            raise SshError(f"{cmd[0]} on {self.where}: connection lost ({exc})") from None
        if res.exited == 127:
            raise TransportError(f"{cmd[0]}: command not found on {self.where}")
        return subprocess.CompletedProcess(list(cmd), res.exited, res.stdout, res.stderr)

    def missing(self, commands: Sequence[str]) -> list[str]:
        out = []
        for c in commands:
            if self.run(["sh", "-c", f"command -v {shlex.quote(c)}"], 30).returncode != 0:
                out.append(c)
        return out

    # ------------------------------------------------------------ files
    def is_dir(self, path: str) -> bool:
        try:
            mode = self._files(f"stat {path}", lambda s: s.stat(path).st_mode)
        except FileNotFoundError:
            return False
        return stat.S_ISDIR(mode or 0)

    def mkdir(self, path: str) -> None:
        parts = PurePosixPath(path).parts
        for i in range(2, len(parts) + 1):
            sub = str(PurePosixPath(*parts[:i]))
            if not self.is_dir(sub):
                self._files(f"mkdir {sub}", _sftp_mkdir, sub)

    def write_text(self, path: str, text: str) -> None:
        tmp = str(PurePosixPath(path).with_name(f".{PurePosixPath(path).name}.tmp"))

        def put(s: Any) -> None:
            with s.open(tmp, "w") as fh:
                fh.write(text.encode())
            s.posix_rename(tmp, path)

        self._files(f"write {path}", put)

    def read_text(self, path: str) -> str:
        def get(s: Any) -> str:
            with s.open(path, "r") as fh:
                return bytes(fh.read()).decode(errors="replace")

        return str(self._files(f"read {path}", get))

    def read_from(self, path: str, offset: int) -> bytes | None:
        def get(s: Any) -> bytes:
            with s.open(path, "r") as fh:
                fh.seek(offset)
                return bytes(fh.read())

        try:
            return bytes(self._files(f"read {path}", get))
        except FileNotFoundError:
            return None

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._files(f"remove {path}", lambda s: s.remove(path))

    def put_tree(self, local: Path, remote: str) -> None:
        self.mkdir(remote)
        for item in sorted(local.rglob("*")):
            target = str(PurePosixPath(remote, *item.relative_to(local).parts))
            if item.is_dir():
                self.mkdir(target)
            else:
                self._files(f"upload {target}", _sftp_put, str(item), target)

    def get_tree(self, remote: str, local: Path) -> None:
        local.mkdir(parents=True, exist_ok=True)
        entries = self._files(f"list {remote}", lambda s: s.listdir_attr(remote))
        for entry in entries:
            src = str(PurePosixPath(remote, entry.filename))
            dst = local / entry.filename
            if stat.S_ISDIR(entry.st_mode or 0):
                self.get_tree(src, dst)
            else:
                self._files(f"download {src}", _sftp_get, src, str(dst))


def _sftp_mkdir(sftp: Any, path: str) -> None:
    sftp.mkdir(path, 0o700)


def _sftp_put(sftp: Any, local: str, remote: str) -> None:
    sftp.put(local, remote)


def _sftp_get(sftp: Any, remote: str, local: str) -> None:
    sftp.get(remote, local)


def _bare(host: str, hops: list[tuple[str, str, int]]) -> tuple[str, int]:
    """``[h]:p`` (paramiko's known_hosts form) -> (h, p); a bare name gets its hop's port."""
    if host.startswith("[") and "]:" in host:
        name, _, port_text = host[1:].partition("]:")
        return name, int(port_text)
    for _, name, port in hops:
        if name == host:
            return host, port
    return host, 22


def _local_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER", "")


def transport_for(config: SlurmConfig) -> Transport:
    """SSH to ``[slurm] host`` when set, else this host."""
    return SshTransport(config) if config.host else LocalTransport()


__all__ = [
    "HostKeyError",
    "LocalTransport",
    "SshError",
    "SshTransport",
    "Transport",
    "TransportError",
    "check_config",
    "transport_for",
]
