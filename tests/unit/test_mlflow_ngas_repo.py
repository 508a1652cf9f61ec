"""NgasArtifactRepository used directly (no tracking server), and the CLI commands."""

from __future__ import annotations

import os

import pytest
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from mlpipe import cli
from mlpipe.storage.mlflow_ngas import NgasArtifactRepository


@pytest.fixture
def repo(ngas_server, ngas_prefix) -> NgasArtifactRepository:
    r = get_artifact_repository(ngas_server.ngas_uri(f"{ngas_prefix}/run/artifacts"))
    assert isinstance(r, NgasArtifactRepository)  # found through the entry point
    return r


def test_listing_synthesises_dirs_newest_version_only(repo, ngas_client, tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f.txt").write_text("f")
    (tmp_path / "g.txt").write_text("gg")
    repo.log_artifact(str(tmp_path / "g.txt"))
    repo.log_artifacts(str(tmp_path / "d"), artifact_path="dir")
    (tmp_path / "g.txt").write_text("ggg")
    repo.log_artifact(str(tmp_path / "g.txt"))  # version 2
    listing = [(f.path, f.is_dir, f.file_size) for f in repo.list_artifacts()]
    assert listing == [("dir", True, None), ("g.txt", False, 3)]
    assert [f.path for f in repo.list_artifacts("dir")] == ["dir/e"]
    assert repo.list_artifacts("g.txt") == []
    out = tmp_path / "out"
    out.mkdir()
    repo.download_artifacts("", str(out))
    assert (out / "g.txt").read_text() == "ggg"
    assert (out / "dir" / "e" / "f.txt").read_text() == "f"


def test_delete_is_refused_with_clear_error_and_nothing_lost(repo, tmp_path):
    """NGAS deletes only files held in 3 copies, so MLflow's delete fails clearly."""
    f = tmp_path / "x.txt"
    f.write_text("x")
    repo.log_artifact(str(f), "sub")
    repo.log_artifact(str(f))
    with pytest.raises(MlflowException, match="at least 3 copies"):
        repo.delete_artifacts("sub")
    assert sorted(i.path for i in repo.list_artifacts()) == ["sub", "x.txt"]
    assert [i.path for i in repo.list_artifacts("sub")] == ["sub/x.txt"]


def test_empty_file_refused_with_clear_error(repo, tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "ok.txt").write_text("ok")
    (tmp_path / "t" / "empty.txt").write_text("")
    with pytest.raises(MlflowException, match="empty.txt"):
        repo.log_artifacts(str(tmp_path / "t"))
    assert repo.list_artifacts() == []  # nothing of the batch was uploaded


@pytest.mark.parametrize(
    "uri",
    ["ngas://", "ngas:///no/host", "ngas://h:notaport/x", "ngas://h:1/a/../b", "ngas://h:1/x?y=1"],
)
def test_bad_uri_clear_error(uri):
    with pytest.raises(MlflowException, match="bad NGAS URI"):
        NgasArtifactRepository(uri)


def test_download_missing_artifact_is_clear(repo, tmp_path):
    with pytest.raises(MlflowException, match="not in NGAS"):
        repo._download_file("missing.bin", str(tmp_path / "m"))


def test_cli_ngas_and_cache(ngas_server, ngas_prefix, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLPIPE_NGAS_URL", ngas_server.url)
    monkeypatch.setenv("MLPIPE_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "obs.fits"
    src.write_bytes(os.urandom(4096))
    fid = f"{ngas_prefix}/raw/obs.fits"
    assert cli.main(["ngas", "status"]) == 0
    assert cli.main(["ngas", "archive", str(src), fid]) == 0
    assert f"{fid} version 1" in capsys.readouterr().out
    assert cli.main(["ngas", "ls", f"{ngas_prefix}/"]) == 0
    assert fid in capsys.readouterr().out
    assert cli.main(["ngas", "retrieve", fid, str(tmp_path)]) == 0
    assert (tmp_path / "obs.fits").read_bytes() == src.read_bytes()
    assert cli.main(["ngas", "retrieve", fid, str(tmp_path / "again.fits")]) == 0
    capsys.readouterr()
    assert cli.main(["cache", "stats"]) == 0
    out = capsys.readouterr().out
    assert "hits      1" in out and "misses    1" in out
    assert cli.main(["ngas", "retrieve", "no/such/file", str(tmp_path / "n")]) == 1
    assert "not in NGAS" in capsys.readouterr().err
    assert cli.main(["ngas", "rm", fid]) == 2
    capsys.readouterr()
    assert cli.main(["ngas", "rm", fid, "--yes"]) == 1  # NGAS keeps single copies
    assert "refused to delete" in capsys.readouterr().err
    assert cli.main(["ngas", "ls", fid]) == 0 and fid in capsys.readouterr().out
    assert cli.main(["cache", "prune", "--all"]) == 0
    assert "removed 1 file" in capsys.readouterr().out
