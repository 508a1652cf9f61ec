"""Client for the NGAS archive server (HTTP commands QARCHIVE, RETRIEVE, QUERY, ...).

Protocol facts it relies on (recorded from NGAS 12.0):

* QARCHIVE with an explicit ``file_id`` keeps path-like ids; re-archiving an id
  adds a version, nothing is overwritten. The body needs a ``Content-Length``.
* RETRIEVE returns the newest version unless ``file_version`` is given.
* ``QUERY?query=files_like&like=<pattern>&format=json`` returns one JSON row per
  version; ``%`` and ``_`` are SQL LIKE wildcards, so prefix listings are
  filtered client-side to exact prefix matches.
* Checksums are CRC-32 (zlib/binascii polynomial, initial value 0) written as a
  decimal string; old Python-2 NGAS wrote them signed, so they are compared
  modulo 2**32.
* FAILURE answers are XML ``<Status Status="FAILURE" Message=...>`` with HTTP
  400/404/411; they become :class:`NgasError` subclasses carrying the message.
* With authorization on, requests carry HTTP Basic credentials; no or wrong
  credentials get 401 (no ``WWW-Authenticate`` header), a user lacking the
  command 403: both become :class:`NgasAccessDenied`, never "not found".
* NGAS refuses an empty body (411) and records each file's mime type (QARCHIVE
  ``mime_type``; QUERY's ``format`` column; RETRIEVE's ``Content-Type``); it
  accepts only mime types its configuration has a ``<Stream>`` for.

Empty files: NGAS cannot store 0 bytes, so an empty file is archived as the
fixed body :data:`EMPTY_MARKER` with the mime type :data:`EMPTY_MIME`
(``application/x-mlpipe-empty``) under its own file id. The mime type, never
the content, decides: a row of that format is an empty file (``FileInfo.size``
0, ``checksum`` the crc32 of no bytes, ``"0"``) and RETRIEVE writes an empty
file after checking that the stored body is exactly the marker (anything else
raises :class:`BadEmptyMarker`); a real file whose bytes equal the marker is
archived with its own mime type and reads back as those bytes. Archiving a
non-empty file as :data:`EMPTY_MIME` is refused. The server needs a
``<Stream>`` (and ``<MimeTypeMap>``) for :data:`EMPTY_MIME`; roles/ngas
renders both. Readers other than mlpipe see the marker body.
"""

from __future__ import annotations

import builtins
import http.client
import logging
import os
import random
import time
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import requests
import urllib3

from mlpipe.storage.errors import (
    BadEmptyMarker,
    BadFileId,
    ChecksumMismatch,
    DeleteRefused,
    NgasAccessDenied,
    NgasError,
    NgasNotFound,
    NgasUnavailable,
)
from mlpipe.storage.progress import progress_bar

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# A download is received into one reused buffer of this size (docs/performance.md).
RECEIVE_BUFFER = 4 * 1024 * 1024
DEFAULT_MIME = "application/octet-stream"

# How an empty file is stored (NGAS refuses 0-byte bodies): this body, this mime
# type. Both are fixed for good: files archived with them stay readable.
EMPTY_MIME = "application/x-mlpipe-empty"
EMPTY_MARKER = (
    b"mlpipe empty-file marker v1\n"
    b"NGAS cannot store empty files. This body, archived with the mime type\n"
    b"application/x-mlpipe-empty, stands for a file of 0 bytes; mlpipe reads it as one.\n"
)
EMPTY_CHECKSUM = str(zlib.crc32(b""))  # "0": the crc32 of an empty file
# Checksum plug-ins whose value is zlib's crc32 (QARCHIVE's default; ARCHIVE's name for it).
CRC32_PLUGINS = frozenset({"crc32", "ngamsGenCrc32"})


def crc32_of_file(path: Path | str, chunk: int = CHUNK) -> int:
    """CRC-32 of a file as NGAS computes it (unsigned)."""
    crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            crc = zlib.crc32(block, crc)
    return crc


def checksum_matches(ngas_checksum: str | int | None, crc: int) -> bool:
    """Compare an NGAS crc32 (decimal, signed or unsigned) with a local unsigned crc32."""
    if ngas_checksum in (None, ""):
        return True  # NGAS may be configured without checksums: nothing to compare
    try:
        return (int(ngas_checksum) & 0xFFFFFFFF) == crc
    except (TypeError, ValueError):
        return False


def _crc32_is(ngas_checksum: str | None, plugin: str, crc: int) -> bool:
    """An NGAS checksum known to be the crc32 ``crc`` (absent or another plug-in: False)."""
    if plugin not in CRC32_PLUGINS or not ngas_checksum:
        return False
    try:
        return (int(ngas_checksum) & 0xFFFFFFFF) == crc
    except ValueError:
        return False


@dataclass(frozen=True)
class FileInfo:
    """One version of one archived file (a files_like row or a QARCHIVE answer).

    ``size`` and ``checksum`` describe the file's content: for an empty-file
    marker (``mime_type`` :data:`EMPTY_MIME`) 0 and :data:`EMPTY_CHECKSUM`, not
    the stored marker body's; ``stored_size`` and ``stored_checksum`` then keep
    what NGAS reports for the body it holds (None for any other file).
    """

    file_id: str
    version: int
    size: int
    checksum: str
    checksum_plugin: str = "crc32"
    disk_id: str = ""
    file_name: str = ""
    mime_type: str = DEFAULT_MIME
    ingestion_date: str = ""
    stored_size: int | None = None
    stored_checksum: str | None = None

    @property
    def empty_marker(self) -> bool:
        """True when NGAS holds this version as an empty-file marker."""
        return self.mime_type == EMPTY_MIME

    def content(self) -> FileInfo:
        """This version as the file it stands for (size 0 for an empty-file marker)."""
        if not self.empty_marker or self.stored_size is not None:
            return self
        return replace(
            self,
            size=0,
            checksum=EMPTY_CHECKSUM,
            stored_size=self.size,
            stored_checksum=self.checksum,
        )

    def holds(self, size: int, crc: int) -> bool:
        """True when this version is known to be a file of ``size`` bytes with crc32 ``crc``.

        Stricter than :func:`checksum_matches`: a version without a crc32
        checksum (NGAS configured without checksums, or another algorithm)
        holds nothing known, so it never matches. An empty-file marker matches
        an empty file only while the body NGAS reports is exactly the marker
        (a damaged marker does not: logging the empty file again repairs it).
        """
        if self.size != size or not _crc32_is(self.checksum, self.checksum_plugin, crc):
            return False
        if not self.empty_marker:
            return True
        return self.stored_size == len(EMPTY_MARKER) and _crc32_is(
            self.stored_checksum, self.checksum_plugin, zlib.crc32(EMPTY_MARKER)
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FileInfo:
        return cls(
            file_id=str(row["file_id"]),
            version=int(row["file_version"]),
            size=int(row.get("file_size") or 0),
            checksum=str(row.get("checksum") or ""),
            checksum_plugin=str(row.get("checksum_plugin") or ""),
            disk_id=str(row.get("disk_id") or ""),
            file_name=str(row.get("file_name") or ""),
            mime_type=str(row.get("format") or DEFAULT_MIME),
            ingestion_date=str(row.get("ingestion_date") or ""),
        ).content()


# What archive() returns: the stored version's FileInfo.
ArchiveResult = FileInfo


@dataclass(frozen=True)
class NgasStatus:
    """The STATUS answer."""

    status: str
    state: str
    sub_state: str
    message: str
    version: str
    host_id: str

    @property
    def online(self) -> bool:
        return self.status == "SUCCESS" and self.state == "ONLINE"


def _parse_status_xml(body: bytes) -> tuple[dict[str, str], ET.Element] | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    status = root.find("Status")
    if root.tag != "NgamsStatus" or status is None:
        return None
    return dict(status.attrib), root


class _UploadBody:
    """Streams a file in 1 MiB chunks, computing its crc32; ``len()`` gives Content-Length."""

    def __init__(self, path: Path, size: int, on_chunk: Callable[[int], object]) -> None:
        self.path, self.size, self.on_chunk = path, size, on_chunk
        self.crc = 0
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while self.sent < self.size:
                block = fh.read(min(CHUNK, self.size - self.sent))
                if not block:
                    raise NgasError(f"{self.path}: file shrank while being archived; try again")
                self.crc = zlib.crc32(block, self.crc)
                self.sent += len(block)
                self.on_chunk(len(block))
                yield block


class _BrokenOff(Exception):
    """A RETRIEVE body stopped before its end (connection closed, reset or timed out)."""


def _body_blocks(resp: requests.Response, buf: bytearray) -> Iterator[memoryview]:
    """The body of a streamed response, block by block, as views of ``buf``.

    Each block is valid until the next one is asked for. An unencoded body is
    received straight into ``buf`` with ``readinto`` on the response's
    ``http.client`` object: no allocation and no extra copy per block (the
    profile in docs/performance.md). Anything else (a ``Content-Encoding``, an
    unexpected urllib3) goes through ``iter_content``. Every network failure,
    and a body shorter than its ``Content-Length``, raises :class:`_BrokenOff`.
    """
    fp = getattr(resp.raw, "_fp", None)
    coding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    view = memoryview(buf)
    got = 0
    try:
        if isinstance(fp, http.client.HTTPResponse) and coding in ("", "identity"):
            while n := fp.readinto(view):
                got += n
                yield view[:n]
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and got < int(length):
                raise _BrokenOff(f"the connection closed after {got} of {length} bytes")
        else:
            for block in resp.iter_content(len(buf)):
                got += len(block)
                yield memoryview(block)
    except (
        OSError,
        http.client.HTTPException,
        urllib3.exceptions.HTTPError,
        requests.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
    ) as exc:
        raise _BrokenOff(f"{type(exc).__name__}: {exc}") from None


class _SecondCopy:
    """The optional second file of :meth:`NgasClient.retrieve` (``also``).

    Best effort: the first failed write (ENOSPC on its filesystem, ...) closes
    and removes it, and nothing more is written to it; the download goes on.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fh: BinaryIO | None = None
        self.failed = path is None

    def open(self) -> None:
        """(Re)start the copy at its first byte (each download attempt)."""
        if self.failed or self.path is None:
            return
        if self.fh is not None:
            self.fh.close()
        try:
            self.fh = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            self._fail(exc)

    def write(self, block: memoryview) -> None:
        if self.fh is None:
            return
        try:
            self.fh.write(block)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        log.debug("second copy %s abandoned: %s", self.path, exc)
        self.close(keep=False)
        self.failed = True

    def close(self, keep: bool) -> None:
        """Close it; remove it unless ``keep`` (the download succeeded) and it is whole."""
        fh, self.fh = self.fh, None
        try:
            if fh is not None:
                fh.close()
        except OSError as exc:  # the last buffered bytes could not be written
            log.debug("second copy %s abandoned: %s", self.path, exc)
            self.failed = True
        if self.path is not None and (self.failed or not keep):
            self.path.unlink(missing_ok=True)


def _archived(root: ET.Element, file_id: str, mime_type: str) -> FileInfo:
    """The stored version a QARCHIVE answer describes (as stored: a marker's own size)."""
    disk = root.find("DiskStatus")
    fstat = root.find(".//FileStatus")
    if fstat is None:
        raise NgasError(f"NGAS QARCHIVE for {file_id}: answer has no FileStatus element")
    a = fstat.attrib
    return FileInfo(
        file_id=a.get("FileId", file_id),
        version=int(a.get("FileVersion", "0")),
        size=int(a.get("FileSize", "0")),
        checksum=a.get("Checksum", ""),
        checksum_plugin=a.get("ChecksumPlugIn", ""),
        disk_id=disk.attrib.get("DiskId", "") if disk is not None else "",
        file_name=a.get("FileName", ""),
        mime_type=a.get("Format", mime_type),
        ingestion_date=a.get("IngestionDate", ""),
    )


def client_options(ngas: Any) -> dict[str, Any]:
    """NgasClient keyword arguments from an ``[ngas]`` config section."""
    return {
        "timeout": ngas.timeout,
        "retries": ngas.retries,
        "backoff": ngas.backoff,
        "username": ngas.username,
        "password": ngas.password,
    }


class NgasClient:
    """Talks to one NGAS server.

    ``url`` is the server base (``http://host:7777``). Connection errors,
    timeouts and 5xx answers are retried ``retries`` times with exponential
    backoff starting at ``backoff`` seconds. ``requests_sent`` counts HTTP
    requests attempted (used by tests and the benchmark). ``username`` and
    ``password`` are sent as HTTP Basic credentials when ``username`` is set.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
        progress: bool | None = None,
        session: requests.Session | None = None,
        username: str = "",
        password: str = "",
    ) -> None:
        self.url = url.rstrip("/")
        self.username = username
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.progress = progress
        self.session = session or requests.Session()
        if username:
            self.session.auth = (username, password)
        self.requests_sent = 0
        self._refused_mime_types: set[str] = set()  # no Stream on this server
        self._env: dict[str, Any] | None = None  # see _environment

    @classmethod
    def from_config(cls, config: Any = None, url: str | None = None) -> NgasClient:
        """A client configured from :func:`mlpipe.config.load_config` (``url`` overrides)."""
        if config is None:
            from mlpipe.config import load_config

            config = load_config()
        ngas = config.ngas
        return cls(url or ngas.url, **client_options(ngas))

    def __repr__(self) -> str:
        return f"NgasClient({self.url!r})"

    def clone(self) -> NgasClient:
        """A client of the same server with the same settings and its own HTTP session (one
        per thread: a :class:`requests.Session` is not made for concurrent use)."""
        other = NgasClient(
            self.url,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            progress=self.progress,
        )
        other.username = self.username
        other.session.auth = self.session.auth
        other.session.verify = self.session.verify
        other.session.cert = self.session.cert
        other.session.headers.update(self.session.headers)
        other._refused_mime_types = self._refused_mime_types  # what one learns, all know
        return other

    # ----------------------------------------------------------------- HTTP
    def _request(
        self,
        method: str,
        command: str,
        params: dict[str, Any],
        *,
        body: Callable[[], Any] | None = None,
        stream: bool = False,
        what: str = "",
    ) -> requests.Response:
        """Send one command with retries; return a 200 response or raise NgasError."""
        url = f"{self.url}/{command}"
        what = what or command
        attempt = 0
        while True:
            self.requests_sent += 1
            try:
                # Session.request() without its per-request look at the environment
                # (proxies, CA bundle: read once per client, _environment): that look
                # took half of a small QUERY's time on loopback (docs/performance.md).
                prepared = self.session.prepare_request(
                    requests.Request(method, url, params=params, data=body() if body else None)
                )
                resp = self.session.send(
                    prepared, stream=stream, timeout=self.timeout, **self._environment()
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem: str = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 500:
                    if resp.status_code == 200:
                        return resp
                    self._raise_failure(resp, command, what)
                problem = f"HTTP {resp.status_code} {resp.reason}"
                resp.close()
            if attempt >= self.retries:
                raise NgasUnavailable(
                    f"NGAS at {self.url} failed {command} for {what} after {attempt + 1} "
                    f"attempt(s): {problem}. Check that the server is up "
                    f"(mlpipe ngas status) and retry.",
                    command=command,
                )
            delay = self.backoff * (2**attempt) * (0.75 + random.random() / 2)
            log.warning(
                "NGAS %s %s: %s; retry %d in %.2fs", command, what, problem, attempt + 1, delay
            )
            time.sleep(delay)
            attempt += 1

    def _environment(self) -> dict[str, Any]:
        """What ``requests`` takes from the environment for this server (proxies from
        ``*_proxy``/``no_proxy``, ``REQUESTS_CA_BUNDLE``...), as Session.request would
        merge it; read once per client."""
        if self._env is None:
            merged = self.session.merge_environment_settings(self.url, {}, None, None, None)
            self._env = {k: merged[k] for k in ("proxies", "verify", "cert")}
        return self._env

    def _raise_failure(self, resp: requests.Response, command: str, what: str) -> None:
        body = resp.content[:65536]
        resp.close()
        parsed = _parse_status_xml(body)
        message = parsed[0].get("Message", "") if parsed else body.decode("utf-8", "replace")[:300]
        text = f"NGAS {command} failed for {what} (HTTP {resp.status_code}): {message}"
        exc_type = NgasError
        if resp.status_code in (401, 403):
            who = f"user {self.username}" if self.username else "no credentials"
            hint = (
                f"the user may not run {command}: use an account granted it"
                if resp.status_code == 403
                else "set [ngas] username and password (MLPIPE_NGAS_USERNAME, "
                "MLPIPE_NGAS_PASSWORD) to an account of this server"
            )
            text = (
                f"NGAS at {self.url} refused {command} for {what} ({who}, "
                f"HTTP {resp.status_code}: {message}); {hint}"
            )
            exc_type = NgasAccessDenied
        elif (
            "NGAMS_ER_UNAVAIL_FILE" in message or resp.status_code == 404 and command == "RETRIEVE"
        ):
            exc_type = NgasNotFound
        raise exc_type(text, command=command, http_status=resp.status_code, ngas_message=message)

    def _xml_ok(
        self, resp: requests.Response, command: str, what: str
    ) -> tuple[dict[str, str], ET.Element]:
        body = resp.content
        parsed = _parse_status_xml(body)
        if parsed is None:
            raise NgasError(
                f"NGAS {command} for {what}: answer is not NGAS status XML: {body[:200]!r}",
                command=command,
            )
        attrs, root = parsed
        if attrs.get("Status") != "SUCCESS":
            message = attrs.get("Message", "")
            raise NgasError(
                f"NGAS {command} failed for {what}: {message}",
                command=command,
                ngas_message=message,
            )
        return attrs, root

    # ------------------------------------------------------------ commands
    def status(self) -> NgasStatus:
        """STATUS: the server's state (``.online`` is True when it serves requests)."""
        attrs, _ = self._xml_ok(
            self._request("GET", "STATUS", {}, what=self.url), "STATUS", self.url
        )
        return NgasStatus(
            status=attrs.get("Status", ""),
            state=attrs.get("State", ""),
            sub_state=attrs.get("SubState", ""),
            message=attrs.get("Message", ""),
            version=attrs.get("Version", ""),
            host_id=attrs.get("HostId", ""),
        )

    def archive(
        self, path: Path | str, file_id: str, mime_type: str = DEFAULT_MIME
    ) -> ArchiveResult:
        """QARCHIVE ``path`` as ``file_id`` (a new version if the id exists).

        Streams from disk with a Content-Length (memory does not grow with the
        file size) and checks the server's crc32 against the bytes sent.
        An empty file (NGAS refuses 0-byte bodies with 411) is archived as the
        empty-file marker (:data:`EMPTY_MARKER`, mime type :data:`EMPTY_MIME`,
        ``mime_type`` is then not kept); the result describes the empty file.
        """
        path = Path(path)
        file_id = validate_file_id(file_id)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise NgasError(f"cannot archive {path}: {exc.strerror}") from None
        if not path.is_file():
            raise NgasError(f"cannot archive {path}: not a regular file")
        if size == 0:
            return self._archive_empty(path, file_id)
        if mime_type == EMPTY_MIME:
            raise NgasError(
                f"cannot archive {path} as {file_id} with the mime type {EMPTY_MIME}: it is "
                "reserved for mlpipe's empty-file markers (the file would read back as empty); "
                "use another mime type"
            )
        bar = progress_bar(size, f"archive {file_id}", self.progress)
        bodies: list[_UploadBody] = []

        def make_body() -> _UploadBody:
            if bodies and bodies[-1].sent:
                bar.update(-bodies[-1].sent)
            bodies.append(_UploadBody(path, size, bar.update))
            return bodies[-1]

        if mime_type in self._refused_mime_types:
            mime_type = DEFAULT_MIME
        try:
            try:
                resp = self._qarchive(file_id, mime_type, make_body)
                _, root = self._xml_ok(resp, "QARCHIVE", file_id)
            except NgasError as exc:
                # A server archives only mime types its configuration has a
                # Stream for (real NGAS: 400 "Unknown mime type: ..."). Every
                # server has application/octet-stream: store it as that instead.
                if mime_type == DEFAULT_MIME or "Unknown mime type" not in exc.ngas_message:
                    raise
                log.warning(
                    "NGAS %s has no Stream for %s; archiving %s as %s (add the mime type to "
                    "the server configuration to keep it)",
                    self.url,
                    mime_type,
                    file_id,
                    DEFAULT_MIME,
                )
                self._refused_mime_types.add(mime_type)
                mime_type = DEFAULT_MIME
                resp = self._qarchive(file_id, mime_type, make_body)
                _, root = self._xml_ok(resp, "QARCHIVE", file_id)
        finally:
            bar.close()
        info = _archived(root, file_id, mime_type)
        sent = bodies[-1]
        if info.size != size or not checksum_matches(info.checksum, sent.crc):
            raise ChecksumMismatch(
                f"NGAS stored {file_id} version {info.version} with size {info.size} and crc32 "
                f"{info.checksum}, but {path} has {size} bytes and crc32 {sent.crc}: the upload "
                "was corrupted. Archive it again (a new version will be created)."
            )
        return info

    def _archive_empty(self, path: Path, file_id: str) -> ArchiveResult:
        """QARCHIVE the empty-file marker as ``file_id`` (the module docstring says why)."""
        try:
            resp = self._qarchive(file_id, EMPTY_MIME, lambda: EMPTY_MARKER)
            _, root = self._xml_ok(resp, "QARCHIVE", file_id)
        except NgasError as exc:
            if "Unknown mime type" not in exc.ngas_message:
                raise
            raise NgasError(
                f"cannot archive the empty file {path} as {file_id}: NGAS at {self.url} has no "
                f"<Stream> for {EMPTY_MIME} ({exc.ngas_message}). NGAS refuses 0-byte files, "
                f"so mlpipe stores an empty file as a small marker of that mime type: add "
                f'<MimeTypeMap MimeType="{EMPTY_MIME}" Extension="empty"/> and a '
                f'<Stream MimeType="{EMPTY_MIME}" PlugIn="ngamsGenDapi"> to the NGAS '
                "configuration (the ngas role renders both) and restart NGAS",
                command="QARCHIVE",
                http_status=exc.http_status,
                ngas_message=exc.ngas_message,
            ) from None
        info = _archived(root, file_id, EMPTY_MIME)
        crc = zlib.crc32(EMPTY_MARKER)
        if (
            info.mime_type != EMPTY_MIME
            or info.size != len(EMPTY_MARKER)
            or not checksum_matches(info.checksum, crc)
        ):
            raise ChecksumMismatch(
                f"NGAS stored the empty-file marker for {file_id} (from {path}) as version "
                f"{info.version} with mime type {info.mime_type}, size {info.size} and crc32 "
                f"{info.checksum}, but the marker is {EMPTY_MIME}, {len(EMPTY_MARKER)} bytes, "
                f"crc32 {crc}: the upload was corrupted. Archive it again (a new version will "
                "be created).",
                command="QARCHIVE",
            )
        return info.content()

    def _qarchive(
        self, file_id: str, mime_type: str, make_body: Callable[[], _UploadBody | bytes]
    ) -> requests.Response:
        # filename=file_id (not the basename): NGAS names the stored file after
        # `filename` (slashes become '~'), so equal basenames of different ids
        # cannot meet on one volume.
        params = {"filename": file_id, "file_id": file_id, "mime_type": mime_type}
        return self._request("POST", "QARCHIVE", params, body=make_body, what=file_id)

    def query_like(self, pattern: str) -> list[FileInfo]:
        """Raw ``files_like`` query: every version of every id matching the LIKE pattern."""
        resp = self._request(
            "GET", "QUERY", {"query": "files_like", "like": pattern, "format": "json"}, what=pattern
        )
        try:
            rows = resp.json()
        except ValueError:
            raise NgasError(
                f"NGAS QUERY files_like {pattern!r}: answer is not JSON: {resp.content[:200]!r}"
            ) from None
        return [FileInfo.from_row(r) for r in rows if not r.get("file_ignore")]

    def versions(self, file_id: str) -> list[FileInfo]:
        """All versions of exactly ``file_id``, oldest first (empty if none)."""
        file_id = validate_file_id(file_id)
        rows = [r for r in self.query_like(file_id) if r.file_id == file_id]
        return sorted(rows, key=lambda r: r.version)

    def info(self, file_id: str, version: int | None = None) -> FileInfo:
        """The newest (or the given) version of ``file_id``; one small QUERY request."""
        rows = self.versions(file_id)
        if version is not None:
            rows = [r for r in rows if r.version == version]
        if not rows:
            which = f"{file_id} version {version}" if version is not None else file_id
            raise NgasNotFound(f"{which} is not in NGAS at {self.url}", command="QUERY")
        return rows[-1]

    def exists(self, file_id: str) -> bool:
        """True if any version of ``file_id`` is archived."""
        return bool(self.versions(file_id))

    def list(self, prefix: str = "", all_versions: bool = False) -> list[FileInfo]:
        """Files whose id starts with ``prefix``: newest version of each, sorted by id.

        ``%`` and ``_`` in ``prefix`` are matched literally (filtered client-side).
        """
        rows = [r for r in self.query_like(prefix + "%") if r.file_id.startswith(prefix)]
        if all_versions:
            return sorted(rows, key=lambda r: (r.file_id, r.version))
        newest: dict[str, FileInfo] = {}
        for r in rows:
            if r.file_id not in newest or r.version > newest[r.file_id].version:
                newest[r.file_id] = r
        return [newest[k] for k in sorted(newest)]

    def retrieve(
        self,
        file_id: str,
        dest: Path | str,
        version: int | None = None,
        expected: FileInfo | None = None,
        also: Path | None = None,
    ) -> FileInfo:
        """RETRIEVE ``file_id`` (newest or ``version``) into the file ``dest``.

        Looks the version up first (one QUERY, skipped when ``expected`` is
        given), streams into a temporary name next to ``dest`` and renames it
        only when the size and crc32 match NGAS's; otherwise nothing is left
        behind and :class:`ChecksumMismatch` is raised. An empty-file marker
        becomes an empty ``dest`` (:class:`BadEmptyMarker` if its body is not
        the marker). Returns the FileInfo.

        ``also``: a second file written with the same bytes as they arrive (the
        read cache's :meth:`~mlpipe.storage.cache.ReadCache.copy_to`: the
        cached object and the caller's copy from one download, without reading
        the object back). It exists afterwards only if ``dest`` was written and
        every write to it succeeded; a failed write (its disk full) removes it
        and the download into ``dest`` goes on.
        """
        dest = Path(dest)
        info = expected or self.info(file_id, version)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:12]}.part"
        second = _SecondCopy(also)
        if info.empty_marker:
            self._retrieve_empty(info, dest, tmp)
            second.open()  # an empty file
            second.close(keep=True)
            return info
        bar = progress_bar(info.size, f"retrieve {file_id}", self.progress)
        buf = bytearray(min(RECEIVE_BUFFER, max(info.size, 64 * 1024)))
        done = False
        try:
            for attempt in range(self.retries + 1):
                resp = self._request(
                    "GET",
                    "RETRIEVE",
                    {"file_id": info.file_id, "file_version": info.version},
                    stream=True,
                    what=f"{info.file_id} version {info.version}",
                )
                crc, size = 0, 0
                try:
                    with resp, open(tmp, "wb") as out:
                        second.open()
                        for block in _body_blocks(resp, buf):
                            crc = zlib.crc32(block, crc)
                            out.write(block)
                            second.write(block)
                            size += len(block)
                            bar.update(len(block))
                    break
                except _BrokenOff as exc:
                    bar.update(-size)
                    if attempt >= self.retries:
                        raise NgasUnavailable(
                            f"download of {info.file_id} from {self.url} broke off: {exc}; "
                            "retry later",
                            command="RETRIEVE",
                        ) from None
                    time.sleep(self.backoff * 2**attempt)
            if size != info.size or not checksum_matches(info.checksum, crc):
                raise ChecksumMismatch(
                    f"download of {info.file_id} version {info.version} from {self.url} "
                    "is corrupt: "
                    f"got {size} bytes crc32 {crc}, NGAS says {info.size} bytes crc32 "
                    f"{info.checksum}. Nothing was written to {dest}; retry, and if it "
                    f"persists run: mlpipe ngas check {info.file_id}",
                    command="RETRIEVE",
                )
            os.replace(tmp, dest)
            done = True
        finally:
            bar.close()
            tmp.unlink(missing_ok=True)
            second.close(keep=done)
        return info

    def _retrieve_empty(self, info: FileInfo, dest: Path, tmp: Path) -> None:
        """RETRIEVE an empty-file marker, check its body, write an empty ``dest``."""
        what = f"{info.file_id} version {info.version}"
        resp = self._request(
            "GET",
            "RETRIEVE",
            {"file_id": info.file_id, "file_version": info.version},
            stream=True,
            what=what,
        )
        try:
            with resp:
                ctype = resp.headers.get("Content-Type", EMPTY_MIME).split(";")[0].strip()
                body = resp.raw.read(len(EMPTY_MARKER) + 1)  # enough to tell; never more
        except (requests.ConnectionError, OSError, urllib3.exceptions.HTTPError) as exc:
            raise NgasUnavailable(
                f"download of {what} from {self.url} broke off: {exc}; retry later",
                command="RETRIEVE",
            ) from None
        problems = []
        if ctype != EMPTY_MIME:
            problems.append(f"RETRIEVE answers Content-Type {ctype}")
        if body != EMPTY_MARKER:
            more = "+" if len(body) > len(EMPTY_MARKER) else ""
            shown = body[:40] + (b"..." if len(body) > 40 else b"")
            problems.append(
                f"the body is not mlpipe's empty-file marker ({len(body)}{more} bytes, "
                f"starting {shown!r})"
            )
        if problems:
            raise BadEmptyMarker(
                f"NGAS at {self.url} lists {what} as an empty file (mime type {EMPTY_MIME}), "
                f"but {' and '.join(problems)}: the stored file is damaged or was not archived "
                f"by mlpipe. Nothing was written to {dest}. Run: mlpipe ngas check "
                f"{info.file_id}; log the file again to add a good version",
                command="RETRIEVE",
            )
        try:
            tmp.touch()
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def check(self, file_id: str) -> str:
        """CHECKFILE: NGAS verifies its stored copy; returns NGAS's message."""
        attrs, _ = self._xml_ok(
            self._request("GET", "CHECKFILE", {"file_id": file_id}, what=file_id),
            "CHECKFILE",
            file_id,
        )
        return attrs.get("Message", "")

    def delete(self, file_id: str, version: int | None = None) -> builtins.list[FileInfo]:
        """REMFILE every version (or one ``version``) of ``file_id``; returns what was removed.

        NGAS needs the disk id of each version, taken from the files_like rows.
        """
        rows = self.versions(file_id)
        if version is not None:
            rows = [r for r in rows if r.version == version]
        if not rows:
            raise NgasNotFound(f"cannot delete {file_id}: not in NGAS at {self.url}")
        for row in rows:
            if not row.disk_id:
                raise NgasError(
                    f"cannot delete {file_id} version {row.version}: NGAS did not report its "
                    "disk id, and REMFILE needs it"
                )
            params = {
                "disk_id": row.disk_id,
                "file_id": row.file_id,
                "file_version": row.version,
                "execute": 1,
            }
            what = f"{row.file_id} version {row.version}"
            try:
                self._xml_ok(self._request("GET", "REMFILE", params, what=what), "REMFILE", what)
            except NgasError as exc:
                if "NGAMS_WA_FILE_COPIES" not in exc.ngas_message:
                    raise
                raise DeleteRefused(
                    f"NGAS at {self.url} refused to delete {what}: NGAS deletes a file only "
                    "while it holds at least 3 copies of it on different disks, and this "
                    "archive holds fewer. Nothing was deleted. Leave the file (NGAS keeps "
                    "every version), or have the NGAS operator remove it.",
                    command="REMFILE",
                    ngas_message=exc.ngas_message,
                ) from None
        return rows


def validate_file_id(file_id: str) -> str:
    """Reject ids NGAS would mangle or that cannot be listed by prefix."""
    if not file_id or file_id != file_id.strip() or file_id.startswith("/"):
        raise BadFileId(
            f"bad NGAS file id {file_id!r}: must be non-empty, no leading '/' or blanks"
        )
    if any(seg in ("", ".", "..") for seg in file_id.split("/")):
        raise BadFileId(f"bad NGAS file id {file_id!r}: empty, '.' or '..' path segments")
    if any(ord(c) < 32 for c in file_id):
        raise BadFileId(f"bad NGAS file id {file_id!r}: control characters")
    return file_id
