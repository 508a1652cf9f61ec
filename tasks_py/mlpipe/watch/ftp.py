"""The FTP(S) side of the watcher: log in, list the directory, resumable downloads.

FTPS is explicit TLS (``AUTH TLS``, :class:`ftplib.FTP_TLS`): the server's
certificate is verified against the system CAs or ``[watch] ca_file`` and its
host name checked; the data connections are protected too (``PROT P``) and
reuse the control connection's TLS session (servers such as vsftpd require it).
Every failure is a :class:`FtpError` naming the server and what to check.
"""

from __future__ import annotations

import contextlib
import ftplib
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlpipe.config import WatchConfig
from mlpipe.errors import BadInput, MlpipeError
from mlpipe.watch.listing import RemoteFile, parse_listing


class FtpError(MlpipeError):
    """The FTP server could not be reached or refused a command (retried next poll)."""


class FtpLoginFailed(FtpError):
    """The server refused the user or password."""


class FtpFileGone(FtpError):
    """The file is no longer on the server (or no longer readable)."""


class _SessionReusingFTP_TLS(ftplib.FTP_TLS):  # noqa: N801 (ftplib's spelling)
    """Data connections resume the control connection's TLS session."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, Any]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


def tls_context(cfg: WatchConfig) -> ssl.SSLContext:
    """Certificate and host name verified: the system CAs, or only ``[watch] ca_file``."""
    if cfg.ca_file and not Path(cfg.ca_file).is_file():
        raise BadInput(
            f"[watch] ca_file: {cfg.ca_file} is not a file; give the PEM bundle of the CA "
            "that signed the FTP server's certificate (or leave it empty for the system CAs)"
        )
    try:
        return ssl.create_default_context(cafile=cfg.ca_file or None)
    except (ssl.SSLError, OSError) as exc:
        raise BadInput(f"[watch] ca_file: {cfg.ca_file} is not a PEM CA bundle: {exc}") from None


class FtpSource:
    """One logged-in session with the watched server (use as a context manager)."""

    def __init__(self, cfg: WatchConfig) -> None:
        self.cfg = cfg
        self.where = f"ftp{'s' if cfg.tls else ''}://{cfg.host}:{cfg.port}{cfg.directory}"
        self.ftp: ftplib.FTP | None = None
        self.mlsd: bool | None = None  # decided from FEAT at login

    def __enter__(self) -> FtpSource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        cfg = self.cfg
        if not cfg.host:
            raise BadInput("[watch] host: name the FTP server (MLPIPE_WATCH_HOST or [watch] host)")
        ftp: ftplib.FTP = (
            _SessionReusingFTP_TLS(context=tls_context(cfg), timeout=cfg.timeout)
            if cfg.tls
            else ftplib.FTP(timeout=cfg.timeout)
        )
        stage = "connect"
        try:
            ftp.connect(cfg.host, cfg.port)
            if isinstance(ftp, ftplib.FTP_TLS):
                stage = "tls"
                ftp.auth()
            stage = "login"
            ftp.login(cfg.user, cfg.password)
            if isinstance(ftp, ftplib.FTP_TLS):
                stage = "tls"
                ftp.prot_p()
            stage = "cwd"
            ftp.cwd(cfg.directory)
            self.mlsd = _has_mlsd(ftp)
        except ssl.SSLCertVerificationError as exc:
            _quit(ftp)
            raise FtpError(
                f"{self.where}: the server's TLS certificate was not verified "
                f"({exc.verify_message}); give its CA in [watch] ca_file "
                "(MLPIPE_WATCH_CA_FILE) or install it among the system CAs"
            ) from None
        except ftplib.error_perm as exc:
            _quit(ftp)
            error = FtpLoginFailed if stage == "login" else FtpError
            raise error(self._refused(stage, exc)) from None
        except (ftplib.Error, OSError, EOFError) as exc:
            _quit(ftp)
            raise FtpError(
                f"{self.where}: cannot connect or log in ({stage}): {exc!r}; retried next poll"
            ) from None
        self.ftp = ftp

    def _refused(self, stage: str, exc: ftplib.error_perm) -> str:
        cfg = self.cfg
        if stage == "login":
            plain = "" if cfg.tls else "; or the server wants TLS: set [watch] tls = true"
            return (
                f"{self.where}: login as {cfg.user!r} refused ({exc}); check [watch] user "
                f"and password (MLPIPE_WATCH_USER, MLPIPE_WATCH_PASSWORD){plain}"
            )
        if stage == "cwd":
            return f"{self.where}: cannot enter {cfg.directory!r} ({exc}); check [watch] directory"
        if stage == "tls":
            return (
                f"{self.where}: the server refused TLS ({exc}); if it has no FTPS, "
                "set [watch] tls = false knowingly (passwords then travel in clear text)"
            )
        return f"{self.where}: {exc}"

    def close(self) -> None:
        if self.ftp is not None:
            _quit(self.ftp)
            self.ftp = None

    def _session(self) -> ftplib.FTP:
        if self.ftp is None:
            raise FtpError(f"{self.where}: not connected")
        return self.ftp

    def list(self) -> list[RemoteFile]:
        """The regular files of the directory (MLSD if the server has it, else LIST)."""
        ftp, lines = self._session(), list[str]()
        command = "MLSD" if self.mlsd else "LIST"
        try:
            ftp.retrlines(command, lines.append)
        except (ftplib.Error, OSError, EOFError) as exc:
            raise FtpError(f"{self.where}: {command} failed: {exc!r}; retried next poll") from None
        return parse_listing(lines, bool(self.mlsd))

    def download(
        self, remote: RemoteFile, part: Path, on_bytes: Callable[[int], object] | None = None
    ) -> int:
        """RETR ``remote`` into ``part``, continuing a partial file (REST) when possible.

        Returns the offset resumed from. The file is fsynced; its size is checked
        against the listing (a different size means the file changed: FtpError).
        """
        ftp = self._session()
        offset = part.stat().st_size if part.exists() else 0
        if offset > remote.size:  # not a prefix of this version
            part.unlink()
            offset = 0
        if offset < remote.size:
            offset = self._retr(ftp, remote, part, offset, on_bytes)
        got = part.stat().st_size
        if got != remote.size:
            part.unlink()
            raise FtpError(
                f"{self.where}: {remote.name}: got {got} bytes, the listing said {remote.size}; "
                "the file changed during the transfer: taken again once stable"
            )
        return offset

    def _retr(
        self,
        ftp: ftplib.FTP,
        remote: RemoteFile,
        part: Path,
        offset: int,
        on_bytes: Callable[[int], object] | None,
    ) -> int:
        ftp.voidcmd("TYPE I")
        if offset:
            try:
                ftp.sendcmd(f"REST {offset}")
            except ftplib.error_perm:  # the server has no REST: start again
                offset = 0
        with part.open("r+b" if offset else "wb") as fh:
            fh.seek(offset)
            fh.truncate()

            def write(chunk: bytes) -> None:
                fh.write(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))

            try:
                if offset:
                    # REST was accepted above; ftplib sends it again with the RETR
                    ftp.retrbinary(f"RETR {remote.name}", write, rest=offset)
                else:
                    ftp.retrbinary(f"RETR {remote.name}", write)
            except ftplib.error_perm as exc:
                raise FtpFileGone(
                    f"{self.where}: {remote.name}: cannot be read any more ({exc}); "
                    "taken again if it comes back"
                ) from None
            except (ftplib.Error, OSError, EOFError) as exc:
                raise FtpError(
                    f"{self.where}: {remote.name}: transfer broke off ({exc!r}); "
                    "continued from the partial file next poll"
                ) from None
            finally:
                fh.flush()
                os.fsync(fh.fileno())
        return offset


def _has_mlsd(ftp: ftplib.FTP) -> bool:
    try:
        features = ftp.sendcmd("FEAT")
    except ftplib.error_perm:
        return False
    return any(line.strip().upper().startswith("MLST") for line in features.splitlines()[1:])


def _quit(ftp: ftplib.FTP) -> None:
    with contextlib.suppress(ftplib.Error, OSError, EOFError, AttributeError):
        ftp.quit()
    with contextlib.suppress(OSError):
        ftp.close()
