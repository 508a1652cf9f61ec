"""The double answers in the shapes recorded from real NGAS 12.0 (tests/ngas_double/recordings)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pytest

from ngas_recordings import live, recorded, same_shape, status_attrs


@pytest.fixture
def double_url(ngas_double) -> str:
    return ngas_double.url


def test_status(double_url):
    rec = recorded("status_ok.http")
    got = live(double_url, "GET", "/STATUS")
    same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]
    assert got[1]["Server"] == rec[1]["Server"]


def test_bad_command(double_url):
    rec, got = recorded("bad_command.http"), live(double_url, "GET", "/FOO")
    same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == "Command not found"


def test_qarchive_empty_body(double_url):
    rec = recorded("qarchive_empty_body.http")
    got = live(double_url, "POST", "/QARCHIVE?filename=model.pkl&file_id=x/model.pkl")
    same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]


def test_qarchive_versions_retrieve_query(double_url, ngas_prefix):
    data = os.urandom(1024 * 1024)
    fid = f"{ngas_prefix}/run42/artifacts/model.pkl"
    target = f"/QARCHIVE?filename=model.pkl&file_id={fid}&mime_type=application/octet-stream"
    rec = recorded("qarchive_ok.http")
    got = live(double_url, "POST", target, data)
    same_shape(rec, got)
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
    same_shape(rec_r, got_r, body_xml=False)
    assert got_r[1]["Content-Disposition"] == rec_r[1]["Content-Disposition"]
    assert got_r[2] == data

    rec_q = recorded("query_files_like_json.http")
    got_q = live(double_url, "GET", f"/QUERY?query=files_like&like={ngas_prefix}%25&format=json")
    same_shape(rec_q, got_q, body_xml=False)
    rec_rows, got_rows = json.loads(rec_q[2]), json.loads(got_q[2])
    assert [list(r) for r in got_rows] == [list(rec_rows[0])] * 2
    assert [r["file_version"] for r in got_rows] == [1, 2]


def test_retrieve_missing(double_url):
    rec, got = (
        recorded("retrieve_missing.http"),
        live(double_url, "GET", "/RETRIEVE?file_id=does/not/exist"),
    )
    same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]


def test_remfile_without_disk_id(double_url):
    rec = recorded("remfile_execute.http")
    got = live(
        double_url,
        "GET",
        "/REMFILE?file_id=exp1/run42/artifacts/model.pkl&file_version=1&execute=1",
    )
    same_shape(rec, got)
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


def test_qarchive_unknown_mime_no_stream(double_url, ngas_prefix):
    """A mime type without a <Stream> is refused, whatever the body (recorded 400)."""
    rec = recorded("qarchive_unknown_mime_no_stream.http")
    fid = f"{ngas_prefix}/model.pkl"
    target = f"/QARCHIVE?filename=model.pkl&file_id={fid}&mime_type=application/x-python-pickle"
    got = live(double_url, "POST", target, os.urandom(2048))
    same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]
    assert live(double_url, "GET", f"/RETRIEVE?file_id={fid}")[0] == 400  # nothing stored


def test_qarchive_empty_body_refused_for_the_marker_mime_type_too(double_url, ngas_prefix):
    """411 comes before the mime type: no empty body is ever stored, marker type or not."""
    rec = recorded("qarchive_empty_body.http")
    target = f"/QARCHIVE?filename=e&file_id={ngas_prefix}/e&mime_type=application/x-mlpipe-empty"
    got = live(double_url, "POST", target)
    same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]


def test_retrieve_content_type_is_the_archived_mime_type(double_url, ngas_prefix):
    """RETRIEVE answers Content-Type: <archived mime type> (recorded with a second type)."""
    rec = recorded("retrieve_other_mime_headers.http")
    fid = f"{ngas_prefix}/exp4/run2/e"
    body = b"any body"
    target = f"/QARCHIVE?filename={fid}&file_id={fid}&mime_type=application/x-mlpipe-empty"
    assert live(double_url, "POST", target, body)[0] == 200
    got = live(double_url, "GET", f"/RETRIEVE?file_id={fid}")
    same_shape(rec, got, body_xml=False)
    assert got[1]["Content-Type"] == "application/x-mlpipe-empty" and got[2] == body
