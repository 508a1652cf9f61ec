"""An NGAS 12.0 protocol double for tests (never shipped, never deployed).

It replays the behaviours recorded from a real NGAS 12.0 server in
``/work/shared/ngas-protocol/responses/`` (status lines, headers, XML and
JSON shapes), keeps files on disk under ``root`` and its catalogue in memory:

* ``STATUS`` -> 200 status XML, State ONLINE.
* ``QARCHIVE`` (POST, ``filename``, ``file_id``, ``mime_type``): a mime type with
  no Stream in the server configuration -> 400 ``Unknown mime type: <type>``
  (real NGAS 12.0, ngamsArchiveUtils; by default the double knows the Streams of
  the upstream sample configuration the recordings were made with,
  :data:`SAMPLE_CONFIG_MIME_TYPES`, plus the one roles/ngas always adds for
  mlpipe, :data:`MLPIPE_STREAM_MIME_TYPES`; ``mime_types=None`` accepts any). A
  body without a usable ``Content-Length`` (absent, 0, or chunked) -> 411, so an
  empty file can only be stored as mlpipe's marker. Without ``file_id``
  the id is the *basename* of ``filename``. Re-archiving an id adds a version.
  The body is written to a staging file and catalogued only once complete, so
  an upload cut off midway leaves nothing visible.
* ``RETRIEVE`` (``file_id``, optional ``file_version``) -> raw bytes with
  ``Content-Disposition: attachment; filename="<stored name>"``; unknown ->
  400 ``NGAMS_ER_UNAVAIL_FILE:4019``.
* ``QUERY?query=files_like&like=P&format=json`` / ``files_list``: JSON rows with
  the recorded keys and key order, one row per version; LIKE is SQLite's
  (``%``, ``_``, ASCII case-insensitive).
* ``CHECKFILE`` -> ``NGAMS_INFO_FILE_OK:4056``; ``REMFILE`` without ``disk_id``
  -> 400 ``NGAMS_ER_CMD_SYNTAX:4035``; with disk_id, file_id and ``execute=1``
  -> 200 with Status FAILURE ``NGAMS_WA_FILE_COPIES:4046`` (NGAS 12.0 deletes
  only files held in 3 copies on different disks; a single-node archive holds
  one); ``execute=0`` reports what would be selected.
* any other command -> 404 ``Command not found``.

Stored names follow the recordings: ``MWAArchive/<date>/<version>/<filename
with '/' -> '~'>.bin`` on two volumes used in turn. Two different ids archived
with the same ``filename`` could meet at one path; the double refuses that with
a 400 instead of overwriting (the client sends ``filename=<file_id>``, so it
never happens). Whether real NGAS guards against this is not recorded.

Checksums: ``ChecksumPlugIn="crc32"``, value = ``zlib.crc32`` of the stored
bytes (initial value 0) as an unsigned decimal string. The recordings show the
same value (57229941) for three archives of the same 1 MiB file, i.e. one
standard CRC-32 of the content; it matches no simple fill pattern (zeros, 0xff,
any single repeated byte, counters, seeded PRNG output), so that file was
presumably random data. NGAS 12 computes it with ``binascii.crc32`` (same
polynomial and init as zlib), unsigned under Python 3; NGAS under Python 2
wrote it signed, which is why clients compare modulo 2**32.

Fault injection (:class:`Faults`, one-shot counters, thread-safe):
``die_mid_upload`` (read half the body, then drop the connection without an
answer), ``fail_5xx`` (answer 503), ``corrupt_retrieve`` (flip one byte of the
body), ``truncate_retrieve`` (send half the body, then close). Not one-shot:
``fail_archive_after`` (let that many QARCHIVEs through, then answer 503 to
every later one until cleared: a batch upload that fails half-way, retries
included), ``hold_retrieve`` (an Event: every RETRIEVE waits until it is set
before answering), ``slow_retrieve`` (seconds over which a RETRIEVE body is
spread), to make concurrent downloads overlap, and ``slow_archive`` (seconds a
QARCHIVE takes before it answers), to make concurrent uploads overlap. The
double's ``max_sim_reqs`` rejects requests beyond NGAS's MaxSimReqs as it does.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import re
import socket
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import quoteattr

SERVER = "NGAMS/12.0/2022-11-29T07:00:00"
VERSION = "12.0/2022-11-29T07:00:00"
HOST_ID = "vm:7777"
CHUNK = 1024 * 1024
DISKS = (
    ("492704c1a6a9c865ac1f46a80d67fd09", "volume1", "BULK-M-000001"),
    ("91c476e66dfb6f0a1c4fecba463c0315", "volume2", "BULK-M-000002"),
)


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="milliseconds")


@dataclass
class StoredFile:
    """One version of one file, as NGAS catalogues it."""

    file_id: str
    version: int
    disk_index: int
    file_name: str
    mime_type: str
    size: int
    checksum: str
    ingestion_date: str
    io_time_ms: int
    ingestion_rate: int

    @property
    def disk_id(self) -> str:
        return DISKS[self.disk_index][0]

    def row(self) -> dict[str, Any]:
        """A files_like / files_list JSON row (recorded key order)."""
        return {
            "disk_id": self.disk_id,
            "file_name": self.file_name,
            "file_id": self.file_id,
            "file_version": self.version,
            "format": self.mime_type,
            "file_size": self.size,
            "uncompressed_file_size": self.size,
            "compression": "NONE",
            "ingestion_date": self.ingestion_date,
            "file_ignore": 0,
            "checksum": self.checksum,
            "checksum_plugin": "crc32",
            "file_status": "00000000",
            "creation_date": self.ingestion_date,
            "io_time": self.io_time_ms,
            "ingestion_rate": self.ingestion_rate,
            "container_id": None,
        }


@dataclass
class Faults:
    """One-shot fault counters; each positive counter affects that many requests."""

    die_mid_upload: int = 0
    fail_5xx: int = 0
    corrupt_retrieve: int = 0
    truncate_retrieve: int = 0
    fail_archive_after: int | None = None  # not one-shot: None is off
    hold_retrieve: threading.Event | None = None
    slow_retrieve: float = 0.0
    slow_archive: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, name: str) -> bool:
        with self._lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False

    def archive_refused(self) -> bool:
        """True once ``fail_archive_after`` QARCHIVEs have passed (each call counts one)."""
        with self._lock:
            if self.fail_archive_after is None:
                return False
            if self.fail_archive_after > 0:
                self.fail_archive_after -= 1
                return False
            return True

    def clear(self) -> None:
        with self._lock:
            self.die_mid_upload = self.fail_5xx = 0
            self.fail_archive_after = None
            self.corrupt_retrieve = self.truncate_retrieve = 0
            if self.hold_retrieve is not None:
                self.hold_retrieve.set()  # release anything still waiting
            self.hold_retrieve = None
            self.slow_retrieve = self.slow_archive = 0.0


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """SQLite LIKE (no ESCAPE clause): % any run, _ any one char, ASCII case-insensitive."""
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(out), re.DOTALL | re.IGNORECASE)


# Mime types with a <Stream> in NGAS 12.0's cfg/sample_server_config.xml: the
# only ones QARCHIVE accepts there.
SAMPLE_CONFIG_MIME_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/pdf",
        "application/x-cfits",
        "application/x-clog",
        "application/x-gfits",
        "application/x-gtar",
        "application/x-hfits",
        "application/x-nglog",
        "application/x-tar",
        "cal/x-fits",
        "cal/x-tfits",
        "image/x-fits",
        "image/x-fitshdr",
        "multialma/related",
        "ngas/nglog",
        "ngas/paf",
        "non/existing",
        "text/ascii",
        "text/log-file",
    }
)


# The Stream roles/ngas renders whatever ngas_mime_types says (its vars/main.yml,
# __ngas_mlpipe_mime_types): the mime type of mlpipe's empty-file markers. Kept
# here as a literal (the double is copied to test hosts on its own); a unit test
# checks it against the role and the client.
MLPIPE_STREAM_MIME_TYPES = frozenset({"application/x-mlpipe-empty"})


class NgasDouble:
    """The double: ``start()`` it, use ``url``, ``stop()`` it (or use ``with``)."""

    def __init__(
        self,
        root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        mime_types: frozenset[str] | None = SAMPLE_CONFIG_MIME_TYPES | MLPIPE_STREAM_MIME_TYPES,
        users: dict[str, tuple[str, frozenset[str] | None]] | None = None,
        auth_exclude: frozenset[str] = frozenset({"STATUS"}),
        max_sim_reqs: int | None = None,
    ) -> None:
        """``users``: authorization on, name -> (password, commands or None for all);
        None: off. ``auth_exclude``: commands that need no credentials. ``max_sim_reqs``:
        NGAS's ``<Server MaxSimReqs>``: a request arriving while that many are being served
        is rejected as the real server does (``qarchive_parallel_overload_503``: a bare
        ``HTTP/1.0 503`` with no headers and no body); None: no limit."""
        self.max_sim_reqs = max_sim_reqs
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests served at once so far
        self.rejected_overload = 0
        self.root = Path(root)
        self.users = users
        self.auth_exclude = auth_exclude
        self.mime_types = mime_types
        self.host = host
        self.port = port
        self.faults = Faults()
        self.files: dict[str, list[StoredFile]] = {}
        self.order: list[StoredFile] = []  # catalogue in ingestion order
        self.lock = threading.Lock()
        self.request_log: list[tuple[str, dict[str, str]]] = []
        self._rr = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for _, slot, _ in DISKS:
            (self.root / slot).mkdir(parents=True, exist_ok=True)
        (self.root / "staging").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> NgasDouble:
        handler = type("Handler", (_Handler,), {"double": self})
        httpd = ThreadingHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="ngas-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> NgasDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------- helpers
    def count(self, command: str | None = None) -> int:
        """Requests received (for ``command`` only, if given)."""
        with self.lock:
            return sum(1 for c, _ in self.request_log if command in (None, c))

    def reset(self) -> None:
        """Forget every file, logged request and fault (for test isolation)."""
        with self.lock:
            for f in self.order:
                self.path_of(f).unlink(missing_ok=True)
            self.files.clear()
            self.order.clear()
            self.request_log.clear()
            self.max_in_flight = self.rejected_overload = 0
        self.faults.clear()

    def path_of(self, f: StoredFile) -> Path:
        return self.root / DISKS[f.disk_index][1] / f.file_name

    def staging_files(self) -> list[Path]:
        return list((self.root / "staging").iterdir())

    def find(self, file_id: str, version: int | None) -> StoredFile | None:
        with self.lock:
            versions = self.files.get(file_id, [])
            if version is None:
                return versions[-1] if versions else None
            return next((v for v in versions if v.version == version), None)


def status_xml(
    message: str, status: str = "SUCCESS", extra: str = "", port: int = 7777, request: str = ""
) -> bytes:
    """The NgamsStatus document, laid out as recorded (``request``: extra Status attributes)."""
    attrs = (
        f'Date="{_now()}" Version="{VERSION}" HostId="{HOST_ID}" Message={quoteattr(message)} '
        f'Status="{status}" State="ONLINE" SubState="IDLE"{request}'
    )
    return (
        '<?xml version="1.0" ?>\n'
        f'<!DOCTYPE NgamsStatus SYSTEM "http://127.0.0.1:{port}/RETRIEVE?internal=ngamsStatus.dtd">\n'
        f"<NgamsStatus>\n  <Status {attrs}/>\n{extra}</NgamsStatus>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    double: NgasDouble
    protocol_version = "HTTP/1.0"

    def version_string(self) -> str:
        return SERVER

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    # ------------------------------------------------------------ replies
    def _reply(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _status(
        self, code: int, message: str, extra: str = "", request: str = "", failure: bool = False
    ) -> None:
        status = "SUCCESS" if code == 200 and not failure else "FAILURE"
        body = status_xml(message, status, extra, self.double.port, request)
        self._reply(code, body, "text/xml")

    def _drop_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------ dispatch
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        d = self.double
        with d.lock:
            if d.max_sim_reqs is not None and d.in_flight >= d.max_sim_reqs:
                d.rejected_overload += 1
                overloaded = True
            else:
                d.in_flight += 1
                d.max_in_flight = max(d.max_in_flight, d.in_flight)
                overloaded = False
        if overloaded:
            self.close_connection = True
            self.wfile.write(b"HTTP/1.0 503\r\n\r\n")
            return
        try:
            self._serve()
        finally:
            with d.lock:
                d.in_flight -= 1

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        command = parts.path.strip("/")
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        d = self.double
        with d.lock:
            d.request_log.append((command, params))
        if d.faults.take("fail_5xx") or command == "QARCHIVE" and d.faults.archive_refused():
            self._drain()
            self._reply(503, b"Service Unavailable", "text/plain")
            return
        if d.users is not None and command not in d.auth_exclude:
            refusal = self._refusal(command, params)
            if refusal:
                self._drain()
                self._status(refusal[0], refusal[1])
                return
        handler = getattr(self, f"cmd_{command}", None)
        if handler is None:
            self._drain()
            self._status(404, "Command not found")
            return
        handler(params)

    def _refusal(self, command: str, params: dict[str, str]) -> tuple[int, str] | None:
        """NGAS 12's authorization (the ``auth_*`` recordings; the messages not recorded
        are read from v12.0's ngamsAuthUtils.authorize): credentials from the header or
        the ``authorization`` URL parameter, 401 when missing or wrong, 403 when the user
        lacks the command; checked before the command is looked up; never a
        ``WWW-Authenticate`` header."""
        users = self.double.users or {}
        value = self.headers.get("Authorization") or params.get("authorization", "")
        if not value:
            return 401, "Unauthorized request received"
        parts = value.split(" ")
        if parts[0] != "Basic":
            return 401, f"Invalid authentication scheme: {parts[0]}"
        if len(parts) != 2:
            return 401, "Invalid Basic authentication, missing value"
        try:
            name, colon, password = base64.b64decode(parts[1]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return 401, "Invalid Basic authentication, missing value"
        if not colon:
            return 401, "Invalid Basic authentication, no password provided"
        if name not in users:
            return 401, "unknown user specified"
        wanted, commands = users[name]
        if password != wanted:
            return 401, f"wrong password for user {name}"
        if commands is not None and command not in commands:
            return 403, "Unauthorized access denied"
        return None

    def _drain(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            left = int(length)
            while left > 0:
                block = self.rfile.read(min(CHUNK, left))
                if not block:
                    break
                left -= len(block)

    # ------------------------------------------------------------ commands
    def cmd_STATUS(self, params: dict[str, str]) -> None:
        self._status(200, "Successfully handled command STATUS")

    def cmd_QARCHIVE(self, params: dict[str, str]) -> None:
        d = self.double
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) == 0:
            self._status(411, "Content-Length is 0 or unknown")
            return
        size = int(length)
        filename = params.get("filename", "")
        file_id = params.get("file_id") or os.path.basename(filename)
        if not file_id:
            self._drain()
            self._status(
                400,
                "NGAMS_ER_CMD_SYNTAX:4035:ERROR: The combination of parameters given together "
                "with the command: QARCHIVE is illegal. Parameter(s): filename: , file_id: .",
            )
            return
        mime = params.get("mime_type") or "application/octet-stream"
        if d.mime_types is not None and mime not in d.mime_types:
            self._drain()
            self._status(400, f"Unknown mime type: {mime}")
            return
        if d.faults.slow_archive:
            time.sleep(d.faults.slow_archive)  # a slow server, not a wait for readiness
        staging = d.root / "staging" / f"{threading.get_ident()}-{os.urandom(6).hex()}"
        die_at = size // 2 if d.faults.take("die_mid_upload") else None
        start = dt.datetime.now()
        request = f' RequestId="{uuid.uuid4()}" RequestTime="{_now()}"'
        crc, got = 0, 0
        try:
            with open(staging, "wb") as out:
                while got < size:
                    want = min(CHUNK, size - got)
                    if die_at is not None:
                        want = min(want, die_at - got)
                        if want <= 0:
                            # the server "dies" mid-upload: its staging file is gone before
                            # the client sees the connection drop (no race with its checks)
                            staging.unlink(missing_ok=True)
                            self._drop_connection()
                            return
                    block = self.rfile.read(want)
                    if not block:
                        return  # client went away: nothing is catalogued
                    crc = zlib.crc32(block, crc)
                    got += len(block)
                    out.write(block)
            seconds = max((dt.datetime.now() - start).total_seconds(), 1e-6)
            with d.lock:
                versions = d.files.setdefault(file_id, [])
                version = versions[-1].version + 1 if versions else 1
                disk_index = d._rr % len(DISKS)
                d._rr += 1
                date = dt.date.today().isoformat()
                stored = (filename or file_id).replace("/", "~")
                rec = StoredFile(
                    file_id=file_id,
                    version=version,
                    disk_index=disk_index,
                    file_name=f"MWAArchive/{date}/{version}/{stored}.bin",
                    mime_type=mime,
                    size=size,
                    checksum=str(crc),
                    ingestion_date=_now(),
                    io_time_ms=int(seconds * 1000),
                    ingestion_rate=int(size / seconds),
                )
                target = d.path_of(rec)
                if target.exists():  # never overwrite another file's bytes silently
                    clash = True
                else:
                    clash = False
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging, target)
                    versions.append(rec)
                    d.order.append(rec)
                on_disk = [f for f in d.order if f.disk_index == disk_index]
        finally:
            staging.unlink(missing_ok=True)
        if clash:
            self._status(
                400,
                "NGAMS_ER_ARCHIVE_PUSH_REQ:4011:ERROR: target file "
                f"{rec.file_name} already exists on {DISKS[disk_index][1]} (double: stored names "
                "come from the filename parameter; use unique filenames)",
            )
            return
        disk_id, slot, logical = DISKS[disk_index]
        fs = rec
        extra = (
            f'  <DiskStatus DiskId="{disk_id}" Archive="MyArchive" '
            f'InstallationDate="2011-01-31T14:31:43.460" Type="None" Manufacturer="0" '
            f'LogicalName="{logical}" HostId="{HOST_ID}" SlotId="{slot}" Mounted="1" '
            f'MountPoint="/srv/ngas/{slot}" NumberOfFiles="{len(on_disk)}" AvailableMb="80076" '
            f'BytesStored="{sum(f.size for f in on_disk)}" Completed="0" CompletionDate="" '
            f'Checksum="" TotalDiskWriteTime="{seconds}" LastCheck="">\n'
            f"    <FileStatus FileName={quoteattr(fs.file_name)} FileId={quoteattr(fs.file_id)} "
            f'FileVersion="{fs.version}" Format={quoteattr(fs.mime_type)} FileSize="{fs.size}" '
            f'UncompressedFileSize="{fs.size}" Compression="NONE" '
            f'IngestionDate="{fs.ingestion_date}" Ignore="0" Checksum="{fs.checksum}" '
            f'ChecksumPlugIn="crc32" FileStatus="00000000" CreationDate="{fs.ingestion_date}" '
            f'Tag="" Permissions="" Owner="" Group="" ModificationDate="" AccessDate="" '
            f'TotalIoTime="{seconds}" IngestionRate="{fs.ingestion_rate}" ContainerId="None"/>\n'
            "  </DiskStatus>\n"
        )
        uri = os.path.basename(filename) or file_id
        message = f"Successfully handled Archive Push Request for data file with URI: {uri}"
        self._status(200, message, extra, request)

    def _unavailable(self, file_id: str, version: int | None) -> None:
        ref = file_id if version is None else f"{file_id}/Version: {version}"
        self._status(
            400,
            f"NGAMS_ER_UNAVAIL_FILE:4019:ERROR: File with ID: {ref} appears not to be available.",
        )

    @staticmethod
    def _version(params: dict[str, str]) -> int | None:
        raw = params.get("file_version", "")
        try:
            v = int(raw)
        except ValueError:
            return None
        return v if v > 0 else None

    def cmd_RETRIEVE(self, params: dict[str, str]) -> None:
        d = self.double
        file_id, version = params.get("file_id", ""), self._version(params)
        rec = d.find(file_id, version)
        if rec is None:
            self._unavailable(file_id, version)
            return
        path = d.path_of(rec)
        hold = d.faults.hold_retrieve
        if hold is not None and not hold.wait(timeout=120):
            self._status(503, "the test never released hold_retrieve")
            return
        self.send_response(200)
        self.send_header("Content-Type", rec.mime_type)
        self.send_header(
            "Content-Disposition", f'attachment; filename="{os.path.basename(rec.file_name)}"'
        )
        self.send_header("Content-Length", str(rec.size))
        self.end_headers()
        self.wfile.flush()
        corrupt = d.faults.take("corrupt_retrieve")
        truncate = d.faults.take("truncate_retrieve")
        pause = d.faults.slow_retrieve * CHUNK / max(rec.size, 1)  # per block
        with open(path, "rb") as fh:
            if not corrupt and not truncate and not pause:
                self.connection.sendfile(fh)
                return
            limit = rec.size // 2 if truncate else rec.size
            sent = 0
            while sent < limit:
                if pause:
                    time.sleep(pause)  # a slow link, not a wait for readiness
                block = fh.read(min(CHUNK, limit - sent))
                if corrupt and sent <= rec.size // 2 < sent + len(block):
                    i = rec.size // 2 - sent
                    block = block[:i] + bytes([block[i] ^ 0xFF]) + block[i + 1 :]
                self.wfile.write(block)
                sent += len(block)
        if truncate:
            self._drop_connection()

    def cmd_QUERY(self, params: dict[str, str]) -> None:
        d = self.double
        query = params.get("query", "")
        if params.get("format") != "json" or query not in ("files_like", "files_list"):
            self._status(400, f"NGAMS_ER_CMD_SYNTAX:4035:ERROR: unsupported query {query!r}")
            return
        with d.lock:
            rows = list(d.order)
        if query == "files_like":
            pattern = like_to_regex(params.get("like", ""))
            rows = [r for r in rows if pattern.fullmatch(r.file_id)]
        body = json.dumps([r.row() for r in rows]).encode()
        self._reply(200, body, "application/json")

    def cmd_CHECKFILE(self, params: dict[str, str]) -> None:
        d = self.double
        file_id, version = params.get("file_id", ""), self._version(params)
        rec = d.find(file_id, version)
        if rec is None:
            self._unavailable(file_id, version)
            return
        crc = 0
        with open(d.path_of(rec), "rb") as fh:
            while block := fh.read(CHUNK):
                crc = zlib.crc32(block, crc)
        slot = DISKS[rec.disk_index][1]
        where = (
            f"File ID: {rec.file_id}/File Version: {rec.version}/Disk ID: {rec.disk_id}/"
            f"Slot ID: {slot}/ Host ID: {HOST_ID}"
        )
        if str(crc) == rec.checksum:
            self._status(
                200,
                f"NGAMS_INFO_FILE_OK:4056:INFO: Checked file with {where} - "
                "file found to be consistent.",
            )
        else:
            self._status(
                400,
                f"NGAMS_ER_FILE_NOK:4057:ERROR: Checked file with {where} - inconsistent checksum.",
            )

    def cmd_REMFILE(self, params: dict[str, str]) -> None:
        d = self.double
        disk_id, file_id = params.get("disk_id", ""), params.get("file_id", "")
        raw_version = params.get("file_version", "")
        if not disk_id or not file_id:
            self._status(
                400,
                "NGAMS_ER_CMD_SYNTAX:4035:ERROR: The combination of parameters given together "
                f"with the command: REMFILE is illegal. Parameter(s): Disk ID: {disk_id}, "
                f"File ID: {file_id}, File Version: {raw_version}.",
            )
            return
        version = self._version(params)
        with d.lock:
            victims = [
                f
                for f in d.files.get(file_id, [])
                if f.disk_id == disk_id and (version is None or f.version == version)
            ]
        if not victims:
            self._unavailable(file_id, version)
            return
        if params.get("execute") == "1":
            # Real NGAS 12.0 (commands/remfile.py) removes a file only when it
            # holds at least 3 copies on different disks; the double holds one
            # copy of everything, so it refuses, with HTTP 200 and a FAILURE
            # status, exactly as the real single-node server does.
            self._status(
                200,
                "NGAMS_WA_FILE_COPIES:4046:WARNING: One or more files requested to be deleted "
                "are not available in at least 3 independent copies within this NGAS system. "
                f"Cannot remove item: {disk_id}/{file_id}/{version}",
                failure=True,
            )
            return
        done = "removed" if params.get("execute") == "1" else "selected for removal (execute=0)"
        self._status(200, f"NGAMS_INFO_REM_FILES:4113:INFO: {len(victims)} file(s) {done}.")
