"""NgasClient against the NGAS server of the session (the double, or real NGAS)."""

from __future__ import annotations

import os
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from mlpipe.errors import BadInput, MlpipeError
from mlpipe.storage import (
    ChecksumMismatch,
    DeleteRefused,
    NgasClient,
    NgasError,
    NgasNotFound,
    NgasUnavailable,
    crc32_of_file,
)
from mlpipe.storage.ngas import EMPTY_MARKER, EMPTY_MIME


def _file(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


def test_status_online(ngas_client):
    st = ngas_client.status()
    assert st.online and st.status == "SUCCESS" and st.version.startswith("12.")


def test_archive_keeps_path_like_id_and_versions(ngas_client, ngas_prefix, tmp_path):
    src = _file(tmp_path, "model.pkl", 200_000)
    fid = f"{ngas_prefix}/run42/artifacts/model.pkl"
    first = ngas_client.archive(src, fid)
    assert (first.file_id, first.version, first.size) == (fid, 1, 200_000)
    assert int(first.checksum) & 0xFFFFFFFF == zlib.crc32(src.read_bytes())
    src2 = _file(tmp_path, "model2.pkl", 1000)
    second = ngas_client.archive(src2, fid)
    assert second.version == 2 and second.disk_id
    assert [v.version for v in ngas_client.versions(fid)] == [1, 2]
    assert ngas_client.exists(fid) and not ngas_client.exists(fid + ".nope")
    latest = ngas_client.retrieve(fid, tmp_path / "out")
    assert latest.version == 2 and (tmp_path / "out").read_bytes() == src2.read_bytes()
    ngas_client.retrieve(fid, tmp_path / "v1", version=1)
    assert (tmp_path / "v1").read_bytes() == src.read_bytes()


def test_list_by_prefix_newest_only_and_literal_wildcards(ngas_client, ngas_prefix, tmp_path):
    src = _file(tmp_path, "f", 10)
    for fid in ("a_b/x", "a_b/x", "aXb/y", "a_b/sub/z", "a%b/w"):
        ngas_client.archive(src, f"{ngas_prefix}/{fid}")
    rows = ngas_client.list(f"{ngas_prefix}/a_b/")
    assert [(r.file_id.split("/", 2)[2], r.version) for r in rows] == [
        ("a_b/sub/z", 1),
        ("a_b/x", 2),
    ]
    assert [r.file_id for r in ngas_client.list(f"{ngas_prefix}/a%b")] == [f"{ngas_prefix}/a%b/w"]
    assert len(ngas_client.list(f"{ngas_prefix}/", all_versions=True)) == 5


def test_retrieve_missing_is_not_found_with_ngas_message(ngas_client, tmp_path):
    with pytest.raises(NgasNotFound, match="does/not/exist"):
        ngas_client.retrieve("does/not/exist", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    # the raw RETRIEVE failure carries NGAS's code
    r = requests.get(
        f"{ngas_client.url}/RETRIEVE", params={"file_id": "does/not/exist"}, timeout=10
    )
    assert r.status_code == 400 and "NGAMS_ER_UNAVAIL_FILE:4019" in r.text


def test_empty_file_archived_as_marker_and_retrieved_empty(ngas_client, ngas_prefix, tmp_path):
    """NGAS refuses 0-byte bodies (411): the client stores the marker, reads back 0 bytes."""
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    fid = f"{ngas_prefix}/empty"
    info = ngas_client.archive(empty, fid, mime_type="text/plain")
    assert (info.size, info.checksum, info.mime_type) == (0, "0", EMPTY_MIME)
    [row] = ngas_client.versions(fid)
    assert (row.size, row.checksum, row.mime_type, row.empty_marker) == (0, "0", EMPTY_MIME, True)
    raw = requests.get(f"{ngas_client.url}/RETRIEVE", params={"file_id": fid}, timeout=10)
    assert raw.content == EMPTY_MARKER and raw.headers["Content-Type"] == EMPTY_MIME
    (tmp_path / "out").write_bytes(b"old contents")
    assert ngas_client.retrieve(fid, tmp_path / "out").size == 0
    assert (tmp_path / "out").read_bytes() == b""


def test_holds_compares_size_and_crc32_strictly(ngas_client, ngas_prefix, tmp_path):
    """FileInfo.holds: what the artifact plugin skips re-uploads on (never a guess)."""
    src = _file(tmp_path, "f", 100)
    crc = crc32_of_file(src)
    info = ngas_client.archive(src, f"{ngas_prefix}/f")
    [row] = ngas_client.versions(f"{ngas_prefix}/f")
    assert info.holds(100, crc) and row.holds(100, crc)
    assert not row.holds(100, crc ^ 1) and not row.holds(99, crc)
    signed = crc - 2**32 if crc >= 2**31 else crc  # Python-2 NGAS wrote it signed
    assert replace(row, checksum=str(signed)).holds(100, crc)
    for checksum, plugin in (("", "crc32"), ("None", "crc32"), (str(crc), "crc32c")):
        assert not replace(row, checksum=checksum, checksum_plugin=plugin).holds(100, crc)
    assert replace(row, checksum_plugin="ngamsGenCrc32").holds(100, crc)  # ARCHIVE's name
    # An empty-file marker holds the empty file only while its stored body is the marker.
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    marker = ngas_client.archive(empty, f"{ngas_prefix}/e")
    [mrow] = ngas_client.versions(f"{ngas_prefix}/e")
    assert marker.holds(0, 0) and mrow.holds(0, 0) and mrow.content() == mrow
    assert mrow.stored_size == len(EMPTY_MARKER) and not mrow.holds(len(EMPTY_MARKER), crc)
    assert not replace(mrow, stored_checksum=str(zlib.crc32(b"x" * len(EMPTY_MARKER)))).holds(0, 0)
    assert not replace(mrow, stored_size=len(EMPTY_MARKER) - 1).holds(0, 0)


def test_marker_mime_type_refused_for_non_empty_files(ngas_client, ngas_prefix, tmp_path):
    src = _file(tmp_path, "f", 10)
    before = ngas_client.requests_sent
    with pytest.raises(NgasError, match="reserved"):
        ngas_client.archive(src, f"{ngas_prefix}/f", mime_type=EMPTY_MIME)
    assert ngas_client.requests_sent == before


def test_server_answers_411_for_empty_body(ngas_server):
    r = requests.post(
        f"{ngas_server.url}/QARCHIVE",
        params={"file_id": "x", "filename": "x", "mime_type": "application/octet-stream"},
        data=b"",
        timeout=10,
    )
    assert r.status_code == 411 and "Content-Length is 0 or unknown" in r.text


def test_unknown_command_is_404(ngas_client):
    with pytest.raises(NgasError, match="Command not found") as info:
        ngas_client._request("GET", "NOSUCHCMD", {})
    assert info.value.http_status == 404


def test_delete_needs_disk_id_and_is_refused_for_single_copies(ngas_client, ngas_prefix, tmp_path):
    """NGAS deletes only files held in 3 copies: a clear refusal, nothing lost."""
    src = _file(tmp_path, "f", 100)
    fid = f"{ngas_prefix}/del/f"
    ngas_client.archive(src, fid)
    ngas_client.archive(src, fid)
    r = requests.get(
        f"{ngas_client.url}/REMFILE",
        params={"file_id": fid, "file_version": 1, "execute": 1},
        timeout=10,
    )
    assert r.status_code == 400 and "NGAMS_ER_CMD_SYNTAX:4035" in r.text
    with pytest.raises(DeleteRefused, match="at least 3 copies") as err:
        ngas_client.delete(fid, version=1)
    assert "NGAMS_WA_FILE_COPIES:4046" in err.value.ngas_message
    assert [v.version for v in ngas_client.versions(fid)] == [1, 2]
    out = tmp_path / "back"
    ngas_client.retrieve(fid, out, version=1)
    assert out.read_bytes() == src.read_bytes()


def test_checkfile(ngas_client, ngas_prefix, tmp_path):
    fid = f"{ngas_prefix}/chk"
    ngas_client.archive(_file(tmp_path, "f", 1000), fid)
    assert "NGAMS_INFO_FILE_OK" in ngas_client.check(fid)


@pytest.mark.parametrize("bad", ["", "/abs", "a//b", "a/../b", " x"])
def test_bad_file_ids_are_bad_input(ngas_client, tmp_path, bad):
    with pytest.raises(BadInput):
        ngas_client.archive(_file(tmp_path, "f", 1), bad)


def test_unreachable_server_retries_then_clear_error():
    client = NgasClient("http://127.0.0.1:9", retries=2, backoff=0.001, timeout=2)
    with pytest.raises(NgasUnavailable, match="3 attempt"):
        client.status()
    assert client.requests_sent == 3
    assert isinstance(NgasUnavailable("x"), MlpipeError)


# ------------------------------------------------------------- fault injection
def test_server_dies_mid_upload_no_partial_file_then_retry_succeeds(
    ngas_faults, ngas_client, ngas_prefix, tmp_path
):
    src = _file(tmp_path, "big", 3 * 1024 * 1024 + 17)
    fid = f"{ngas_prefix}/dies/big"
    no_retry = NgasClient(ngas_client.url, retries=0)
    ngas_faults.faults.die_mid_upload = 1
    with pytest.raises(NgasUnavailable):
        no_retry.archive(src, fid)
    assert not ngas_client.exists(fid)  # nothing half-written is visible
    assert ngas_faults.staging_files() == []
    ngas_faults.faults.die_mid_upload = 1  # the client's own retry gets it through
    info = ngas_client.archive(src, fid)
    assert info.version == 1 and [v.version for v in ngas_client.versions(fid)] == [1]
    ngas_client.retrieve(fid, tmp_path / "back")
    assert crc32_of_file(tmp_path / "back") == crc32_of_file(src)


def test_5xx_is_retried(ngas_faults, ngas_client):
    ngas_faults.faults.fail_5xx = 2
    before = ngas_client.requests_sent
    assert ngas_client.status().online
    assert ngas_client.requests_sent - before == 3


def test_corrupt_download_detected_nothing_written(ngas_faults, ngas_client, ngas_prefix, tmp_path):
    src = _file(tmp_path, "f", 2 * 1024 * 1024)
    fid = f"{ngas_prefix}/corrupt/f"
    ngas_client.archive(src, fid)
    ngas_faults.faults.corrupt_retrieve = 1
    dest = tmp_path / "dl" / "f"
    with pytest.raises(ChecksumMismatch, match="corrupt"):
        ngas_client.retrieve(fid, dest)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    ngas_client.retrieve(fid, dest)  # the fault was one-shot: the next download is good
    assert dest.read_bytes() == src.read_bytes()


def test_truncated_download_is_retried(ngas_faults, ngas_client, ngas_prefix, tmp_path):
    src = _file(tmp_path, "f", 2 * 1024 * 1024)
    fid = f"{ngas_prefix}/trunc/f"
    ngas_client.archive(src, fid)
    ngas_faults.faults.truncate_retrieve = 1
    ngas_client.retrieve(fid, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == src.read_bytes()


def test_mime_type_without_stream_is_stored_as_octet_stream(
    ngas_server, ngas_prefix, tmp_path, caplog
):
    """NGAS archives only mime types with a Stream (sample config: no text/plain)."""
    client = NgasClient(ngas_server.url, retries=1, backoff=0.01)
    raw = requests.post(
        f"{ngas_server.url}/QARCHIVE",
        params={
            "filename": f"{ngas_prefix}/x",
            "file_id": f"{ngas_prefix}/x",
            "mime_type": "text/plain",
        },
        data=b"some text\n",
        timeout=30,
    )
    assert raw.status_code == 400 and "Unknown mime type: text/plain" in raw.text

    src = tmp_path / "notes.txt"
    src.write_text("observing log\n")
    sent = client.requests_sent
    info = client.archive(src, f"{ngas_prefix}/notes.txt", mime_type="text/plain")
    assert info.mime_type == "application/octet-stream"
    assert client.requests_sent - sent == 2  # refused once, then stored
    assert "no Stream for text/plain" in caplog.text
    out = tmp_path / "back.txt"
    client.retrieve(f"{ngas_prefix}/notes.txt", out)
    assert out.read_bytes() == src.read_bytes()

    sent = client.requests_sent  # the client remembers: no second refusal
    client.archive(src, f"{ngas_prefix}/notes2.txt", mime_type="text/plain")
    assert client.requests_sent - sent == 1
