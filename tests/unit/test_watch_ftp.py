"""The FTP side of ``mlpipe watch ftp`` against a real pyftpdlib server on loopback:
MLSD and LIST listings, FTPS with the certificate verified (and refused for a wrong CA),
REST resume over TLS, and a wrong password (clear error, state untouched)."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from ftp import make_ca, start_ftp_server
from mlpipe.cli import main
from mlpipe.config import WatchConfig
from mlpipe.errors import BadInput
from mlpipe.watch.ftp import FtpError, FtpSource
from mlpipe.watch.listing import RemoteFile
from mlpipe.watch.state import WatchState

PIPELINES = Path(__file__).resolve().parents[1] / "ftp"


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    root = tmp_path / "drop"
    root.mkdir()
    (root / "obs 1.csv").write_bytes(bytes(range(256)) * 40)
    (root / "two.csv").write_bytes(b"b" * 77)
    (root / "sub").mkdir()
    return root


def config(server, **kw) -> WatchConfig:
    base = {"host": server.host, "port": server.port, "user": server.user}
    return WatchConfig(**{**base, "password": server.password, "tls": False, **kw})


@pytest.mark.parametrize("mlsd", [True, False], ids=["mlsd", "list"])
def test_lists_regular_files_with_mlsd_or_list(drop: Path, mlsd: bool):
    server = start_ftp_server(drop, mlsd=mlsd)
    try:
        with FtpSource(config(server)) as source:
            assert source.mlsd is mlsd
            files = source.list()
    finally:
        server.stop()
    assert [(f.name, f.size) for f in files] == [("obs 1.csv", 10240), ("two.csv", 77)]
    assert all(f.mtime for f in files)
    if mlsd:
        assert all(len(f.mtime) >= 14 and f.mtime[:14].isdigit() for f in files)


def test_ftps_verifies_the_certificate_and_resumes_with_rest(drop: Path, tmp_path: Path):
    good, wrong = make_ca(tmp_path, "good"), make_ca(tmp_path, "wrong")
    server = start_ftp_server(drop, tls_ca=good)
    try:
        cfg = config(server, tls=True, ca_file=str(good.cert_file))
        part = tmp_path / "obs.part"
        want = (drop / "obs 1.csv").read_bytes()
        part.write_bytes(want[:3000])  # what a killed download left
        with FtpSource(cfg) as source:
            remote = next(f for f in source.list() if f.name == "obs 1.csv")
            assert source.download(remote, part) == 3000  # resumed there, not restarted
        assert part.read_bytes() == want
        part.write_bytes(b"x" * 20000)  # longer than the file: not a prefix, fetched again
        with FtpSource(cfg) as source:
            assert source.download(remote, part) == 0
        assert part.read_bytes() == want

        no_ca = dataclasses.replace(cfg, ca_file="")  # the system CAs do not know it
        for bad in (dataclasses.replace(cfg, ca_file=str(wrong.cert_file)), no_ca):
            with pytest.raises(FtpError, match=r"certificate was not verified.*\[watch\] ca_file"):
                FtpSource(bad).connect()
        with pytest.raises(BadInput, match=r"\[watch\] ca_file: .* is not a file"):
            FtpSource(dataclasses.replace(cfg, ca_file=str(tmp_path / "nope.pem"))).connect()
    finally:
        server.stop()


def test_plain_client_against_a_tls_only_server_is_refused(drop: Path, tmp_path: Path):
    server = start_ftp_server(drop, tls_ca=make_ca(tmp_path, "ca"))
    try:
        with pytest.raises(FtpError, match=r"login as 'drop' refused.*\[watch\] tls = true"):
            FtpSource(config(server)).connect()  # tls = false: the server wants AUTH TLS
    finally:
        server.stop()


def test_download_of_a_vanished_file_is_a_clear_error(drop: Path, tmp_path: Path):
    server = start_ftp_server(drop)
    try:
        with (
            FtpSource(config(server)) as source,
            pytest.raises(FtpError, match=r"gone\.csv: cannot be read any more"),
        ):
            source.download(RemoteFile("gone.csv", 10, "x"), tmp_path / "gone.part")
    finally:
        server.stop()


def test_wrong_password_is_a_clear_error_and_the_state_is_untouched(
    drop: Path, tmp_path: Path, monkeypatch, capsys
):
    server = start_ftp_server(drop)
    state_dir = tmp_path / "state"
    before = WatchState(state_dir / "ftp.sqlite")
    before.observe([RemoteFile("two.csv", 77, "20260101000000")], stable_polls=2)
    before.close()
    env = {
        "MLPIPE_WATCH_HOST": server.host,
        "MLPIPE_WATCH_PORT": str(server.port),
        "MLPIPE_WATCH_USER": server.user,
        "MLPIPE_WATCH_PASSWORD": "not-the-password",
        "MLPIPE_WATCH_TLS": "false",
        "MLPIPE_WATCH_STATE_DIR": str(state_dir),
        "MLPIPE_WATCH_PIPELINE": str(PIPELINES / "preprocess-incoming.yaml"),
        "MLPIPE_WATCH_STABLE_POLLS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        code = main(["watch", "ftp", "--once"])
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert code == 1
    assert "login as 'drop' refused" in err and "MLPIPE_WATCH_PASSWORD" in err
    assert "not-the-password" not in err
    db = sqlite3.connect(state_dir / "ftp.sqlite")
    assert db.execute("SELECT name, size, polls FROM seen").fetchall() == [("two.csv", 77, 1)]
    assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
    assert list((state_dir / "ftp.files").iterdir()) == []


def test_bad_watch_settings_name_the_key(monkeypatch, capsys, tmp_path: Path):
    monkeypatch.setenv("MLPIPE_WATCH_STABLE_POLLS", "0")
    assert main(["watch", "ftp", "--once"]) == 2
    assert "[watch] stable_polls" in capsys.readouterr().err
    monkeypatch.delenv("MLPIPE_WATCH_STABLE_POLLS")
    monkeypatch.setenv(
        "MLPIPE_WATCH_PIPELINE",
        str(PIPELINES.parent.parent / "tasks_py" / "examples" / "weather" / "pipeline.yaml"),
    )
    assert main(["watch", "ftp", "--once"]) == 2
    assert "[watch] input 'incoming'" in capsys.readouterr().err
