"""NGAS with authorization on (as the ngas role configures it): the double answers as
real NGAS 12.0 did (the ``auth_*`` recordings), and the client sends credentials, maps
401/403 to NgasAccessDenied naming the user and command (never "not found", never
retried), through the read cache and the connection probe too.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from mlpipe.config import load_config, render
from mlpipe.storage import NgasClient, NgasNotFound, ReadCache
from mlpipe.storage.errors import NgasAccessDenied
from ngas_double import NgasDouble
from ngas_recordings import live, recorded, same_shape, status_attrs

# the recordings' server: writer may run everything, reader RETRIEVE/QUERY/CHECKFILE
USERS = {
    "writer": ("writer-secret", None),
    "reader": ("reader-secret", frozenset({"RETRIEVE", "QUERY", "CHECKFILE"})),
}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):
    double = NgasDouble(tmp_path_factory.mktemp("ngas-auth"), users=USERS).start()
    yield double
    double.stop()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _client(double: NgasDouble, user: str = "", password: str = "") -> NgasClient:
    return NgasClient(double.url, retries=2, backoff=0.001, username=user, password=password)


@pytest.mark.parametrize(
    ("recording", "method", "target", "headers"),
    [
        ("auth_retrieve_no_credentials", "GET", "/RETRIEVE?file_id=arch.bin", ""),
        (
            "auth_retrieve_wrong_password",
            "GET",
            "/RETRIEVE?file_id=arch.bin",
            f"Authorization: {_basic('writer', 'wrong')}\r\n",
        ),
        (
            "auth_qarchive_reader_forbidden",
            "POST",
            "/QARCHIVE?filename=auth.bin&mime_type=application/octet-stream",
            f"Authorization: {_basic('reader', 'reader-secret')}\r\n",
        ),
        ("auth_status_excluded_no_credentials", "GET", "/STATUS", ""),
    ],
)
def test_the_double_answers_as_recorded(secured, recording, method, target, headers):
    rec = recorded(f"{recording}.http")
    got = live(secured.url, method, target, b"x" * 4096 if method == "POST" else b"", headers)
    same_shape(rec, got)
    assert status_attrs(got[2])["Message"] == status_attrs(rec[2])["Message"]
    assert "WWW-Authenticate" not in got[1]


def test_writer_archives_and_reader_retrieves(secured, tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(5000))
    writer = _client(secured, "writer", "writer-secret")
    writer.archive(src, "auth/a.bin")
    reader = _client(secured, "reader", "reader-secret")
    reader.retrieve("auth/a.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert [f.file_id for f in reader.list("auth/")] == ["auth/a.bin"]


def test_reader_may_not_archive_and_is_not_retried(secured, tmp_path):
    src = tmp_path / "b.bin"
    src.write_bytes(b"payload")
    reader = _client(secured, "reader", "reader-secret")
    with pytest.raises(NgasAccessDenied) as err:
        reader.archive(src, "auth/b.bin")
    assert err.value.http_status == 403
    assert "user reader" in str(err.value) and "may not run QARCHIVE" in str(err.value)
    assert reader.requests_sent == 1
    assert _client(secured, "writer", "writer-secret").list("auth/b") == []


@pytest.mark.parametrize(
    ("user", "password", "said"),
    [
        ("", "", "no credentials"),
        ("writer", "wrong", "wrong password for user writer"),
        ("nobody", "x", "unknown user specified"),
    ],
)
def test_missing_or_wrong_credentials_are_access_denied_not_not_found(
    secured, tmp_path, user, password, said
):
    client = _client(secured, user, password)
    with pytest.raises(NgasAccessDenied) as err:
        client.retrieve("auth/never-archived.bin", tmp_path / "x")
    assert not isinstance(err.value, NgasNotFound)
    assert err.value.http_status == 401 and said in str(err.value)
    assert "MLPIPE_NGAS_USERNAME" in str(err.value)
    assert client.requests_sent == 1
    assert not (tmp_path / "x").exists()
    # STATUS is excluded from authorization, as the role configures it
    assert client.status().online


def test_the_read_cache_and_its_probe_use_the_configured_credentials(
    secured, tmp_path, monkeypatch
):
    src = tmp_path / "c.bin"
    src.write_bytes(os.urandom(3000))
    _client(secured, "writer", "writer-secret").archive(src, "auth/c.bin")
    env = {
        "MLPIPE_NGAS_URL": secured.url,
        "MLPIPE_NGAS_USERNAME": "reader",
        "MLPIPE_NGAS_PASSWORD": "reader-secret",
        "MLPIPE_CACHE_DIR": str(tmp_path / "cache"),
        "MLPIPE_CACHE_MODE": "auto",
    }
    config = load_config(env=env)
    assert "reader-secret" not in render(config)  # masked in `mlpipe config show`
    cache = ReadCache.from_config(config)
    path = cache.fetch("auth/c.bin")
    assert Path(path).read_bytes() == src.read_bytes()

    wrong = load_config(
        env={**env, "MLPIPE_NGAS_PASSWORD": "nope", "MLPIPE_CACHE_DIR": str(tmp_path / "c2")}
    )
    with pytest.raises(NgasAccessDenied, match="wrong password for user reader"):
        ReadCache.from_config(wrong).fetch("auth/c.bin")
