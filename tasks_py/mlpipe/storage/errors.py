"""Exceptions of the storage layer (all :class:`mlpipe.errors.MlpipeError`)."""

from __future__ import annotations

from mlpipe.errors import BadInput, MlpipeError


class NgasError(MlpipeError):
    """NGAS answered FAILURE (or something unusable). Carries NGAS's own message."""

    def __init__(
        self,
        message: str,
        *,
        command: str = "",
        http_status: int | None = None,
        ngas_message: str = "",
    ) -> None:
        super().__init__(message)
        self.command = command
        self.http_status = http_status
        self.ngas_message = ngas_message


class NgasNotFound(NgasError):
    """The file id (or that version of it) is not in the archive (NGAMS_ER_UNAVAIL_FILE)."""


class NgasAccessDenied(NgasError):
    """NGAS refused the request's credentials (401) or the user's right to the command (403)."""


class NgasUnavailable(NgasError):
    """NGAS could not be reached (connection errors / 5xx) even after the retries."""


class DeleteRefused(NgasError):
    """NGAS refused a REMFILE (it deletes only files it holds in 3 copies)."""


class ChecksumMismatch(NgasError):
    """Bytes received or sent do not match NGAS's crc32; nothing was kept."""


class BadEmptyMarker(ChecksumMismatch):
    """A version NGAS lists as an empty-file marker whose stored body is not the marker."""


class CacheMiss(MlpipeError):
    """A file is not in the local cache and the connection mode forbids downloading it."""


class CacheFull(MlpipeError):
    """The cache's filesystem has no room for a download (ENOSPC, or the free-space reserve)."""


class CacheLockTimeout(MlpipeError):
    """Another process held an entry's download lock longer than ``[cache] lock_timeout``."""


class BadFileId(BadInput):
    """An NGAS file id that NGAS would mangle or that cannot be listed by prefix."""


class BadUri(BadInput):
    """A storage URI (ngas://host:port/path) is malformed."""
