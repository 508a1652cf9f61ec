"""The double answers in the shapes recorded from real NGAS 12.0 (tests/ngas_double/recordings)."""

from __future__ import annotations

import json
import os
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

RECORDINGS = Path(__file__).resolve().parents[1] / "ngas_double" / "recordings"


def parse_http(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    if not _:
        head, _, body = raw.partition(b"\n\n")
    lines = head.decode().splitlines()
    assert lines[0].startswith("HTTP/1.0 "), lines[0]
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def recorded(name: str) -> tuple[int, dict[str, str], bytes]:
    return parse_http((RECORDINGS / name).read_bytes())


def live(url: str, method: str, target: str, body: bytes = b"", headers: str = "") -> tuple:
    host, port = url.split("://")[1].split(":")
    req = f"{method} {target} HTTP/1.0\r\nHost: {host}\r\n{headers}"
    if method == "POST" and "Content-Length" not in headers:
        req += f"Content-Length: {len(body)}\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(req.encode() + b"\r\n" + body)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return parse_http(b"".join(chunks))


def status_attrs(body: bytes) -> dict[str, str]:
    return dict(ET.fromstring(body).find("Status").attrib)


@pytest.fixture
def double_url(ngas_double) -> str:
    return ngas_double.url


def _same_shape(rec, got, *, body_xml: bool = True) -> None:
    assert got[0] == rec[0]
    assert list(got[1]) == list(rec[1]), "same headers in the same order"
    if body_xml:
        r, g = status_attrs(rec[2]), status_attrs(got[2])
        assert list(g) == list(r)
        for k in ("Status", "State", "SubState", "Version"):
            assert g[k] == r[k], k


def test_status(double_url):
    rec = recorded("status_ok.http")
    got = live(double_url, "GET", "/STATUS")
    _same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]
    assert got[1]["Server"] == rec[1]["Server"]


def test_bad_command(double_url):
    rec, got = recorded("bad_command.http"), live(double_url, "GET", "/FOO")
    _same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == "Command not found"


def test_qarchive_empty_body(double_url):
    rec = recorded("qarchive_empty_body.http")
    got = live(double_url, "POST", "/QARCHIVE?filename=model.pkl&file_id=x/model.pkl")
    _same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]


def test_qarchive_versions_retrieve_query(double_url, ngas_prefix):
    data = os.urandom(1024 * 1024)
    fid = f"{ngas_prefix}/run42/artifacts/model.pkl"
    target = f"/QARCHIVE?filename=model.pkl&file_id={fid}&mime_type=application/octet-stream"
    rec = recorded("qarchive_ok.http")
    got = live(double_url, "POST", target, data)
    _same_shape(rec, got)
    r_fs = ET.fromstring(rec[2]).find(".//FileStatus").attrib
    g_fs = ET.fromstring(got[2]).find(".//FileStatus").attrib
    assert list(g_fs) == list(r_fs)
    assert (
        g_fs["FileId"] == fid and g_fs["FileVersion"] == "1" and g_fs["ChecksumPlugIn"] == "crc32"
    )
    assert g_fs["FileName"].endswith("/1/model.pkl.bin")
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]
    got2 = live(double_url, "POST", target, data)
    assert ET.fromstring(got2[2]).find(".//FileStatus").attrib["FileVersion"] == "2"

    rec_r = recorded("retrieve_ok_headers.http")
    got_r = live(double_url, "GET", f"/RETRIEVE?file_id={fid}")
    _same_shape(rec_r, got_r, body_xml=False)
    assert got_r[1]["Content-Disposition"] == rec_r[1]["Content-Disposition"]
    assert got_r[2] == data

    rec_q = recorded("query_files_like_json.http")
    got_q = live(double_url, "GET", f"/QUERY?query=files_like&like={ngas_prefix}%25&format=json")
    _same_shape(rec_q, got_q, body_xml=False)
    rec_rows, got_rows = json.loads(rec_q[2]), json.loads(got_q[2])
    assert [list(r) for r in got_rows] == [list(rec_rows[0])] * 2
    assert [r["file_version"] for r in got_rows] == [1, 2]


def test_retrieve_missing(double_url):
    rec, got = (
        recorded("retrieve_missing.http"),
        live(double_url, "GET", "/RETRIEVE?file_id=does/not/exist"),
    )
    _same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]


def test_remfile_without_disk_id(double_url):
    rec = recorded("remfile_execute.http")
    got = live(
        double_url,
        "GET",
        "/REMFILE?file_id=exp1/run42/artifacts/model.pkl&file_version=1&execute=1",
    )
    _same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]


def test_recorded_checksum_is_decimal_crc32_and_client_accepts_signed():
    from mlpipe.storage.ngas import checksum_matches

    rows = json.loads(recorded("query_files_like_json.http")[2])
    assert {r["checksum"] for r in rows} == {"57229941"} and {r["file_size"] for r in rows} == {
        1048576
    }
    assert checksum_matches("57229941", 57229941)
    assert checksum_matches(str(2805525020 - 2**32), 2805525020)  # Python-2 NGAS signed form
    assert not checksum_matches("57229942", 57229941)
