"""NgasArtifactRepository used directly (no tracking server), and the CLI commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
import yaml
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from mlpipe import cli
from mlpipe.storage.mlflow_ngas import NgasArtifactRepository
from mlpipe.storage.ngas import EMPTY_MARKER, EMPTY_MIME
from ngas_double import NgasDouble
from ngas_double.server import MLPIPE_STREAM_MIME_TYPES, SAMPLE_CONFIG_MIME_TYPES

REPO = Path(__file__).resolve().parents[2]
EMPTY_TYPE_ENTRY = {"mime_type": EMPTY_MIME, "extension": "empty"}


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


def _sizes(repo: NgasArtifactRepository, path: str | None = None) -> dict[str, int | None]:
    return {f.path: f.file_size for f in repo.list_artifacts(path)}


def test_empty_files_round_trip_byte_for_byte_and_list_as_size_0(
    repo, ngas_client, ngas_server, tmp_path
):
    tree = tmp_path / "t"
    (tree / "pkg").mkdir(parents=True)
    (tree / "ok.txt").write_text("ok")
    (tree / "empty.txt").write_bytes(b"")
    (tree / "pkg" / "__init__.py").write_bytes(b"")
    (tree / "marker.txt").write_bytes(EMPTY_MARKER)  # a real file that looks like the marker
    repo.log_artifacts(str(tree))
    single = tmp_path / "lone.empty"
    single.write_bytes(b"")
    repo.log_artifact(str(single), "one")
    assert _sizes(repo) == {
        "empty.txt": 0,
        "marker.txt": len(EMPTY_MARKER),
        "ok.txt": 2,
        "one": None,
        "pkg": None,
    }
    assert _sizes(repo, "pkg") == {"pkg/__init__.py": 0}
    assert _sizes(repo, "one") == {"one/lone.empty": 0}
    # As NGAS holds them: the empty ones as markers, the look-alike with its own type.
    root = repo._file_id()
    formats = {r.file_id[len(root) + 1 :]: r.mime_type for r in ngas_client.list(root + "/")}
    assert formats["empty.txt"] == formats["pkg/__init__.py"] == EMPTY_MIME
    assert formats["one/lone.empty"] == EMPTY_MIME
    assert formats["marker.txt"] != EMPTY_MIME and formats["ok.txt"] != EMPTY_MIME
    out = tmp_path / "out"
    out.mkdir()
    repo.download_artifacts("", str(out))
    for rel in ("ok.txt", "empty.txt", "pkg/__init__.py", "marker.txt"):
        assert (out / rel).read_bytes() == (tree / rel).read_bytes(), rel
    assert (out / "one" / "lone.empty").read_bytes() == b""
    served = repo.get_local_path("pkg/__init__.py")  # the proxied server's path
    assert served is not None and Path(served).read_bytes() == b""


def _archive_as_marker(url: str, fid: str, body: bytes) -> None:
    """Store BODY under FID with the marker's mime type, as a damaged marker would be."""
    r = requests.post(
        f"{url}/QARCHIVE",
        params={"filename": fid, "file_id": fid, "mime_type": EMPTY_MIME},
        data=body,
        timeout=10,
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body",
    [b"not the marker", EMPTY_MARKER[:-1], EMPTY_MARKER + b"x", b"\0" * len(EMPTY_MARKER)],
    ids=["other", "truncated", "longer", "same-size"],
)
def test_damaged_marker_is_an_error_not_an_empty_file(repo, ngas_server, tmp_path, body):
    """The mime type says "empty"; a body that is not the marker must not be served as empty."""
    fid = repo._file_id("broken", "__init__.py")
    _archive_as_marker(ngas_server.url, fid, body)
    assert _sizes(repo, "broken") == {"broken/__init__.py": 0}  # the mime type decides
    dest = tmp_path / "got" / "__init__.py"
    with pytest.raises(MlflowException, match="not mlpipe's empty-file marker"):
        repo._download_file("broken/__init__.py", str(dest))
    assert not dest.exists()
    with pytest.raises(MlflowException, match="damaged"):
        repo.get_local_path("broken/__init__.py")


def test_empty_file_on_ngas_without_the_marker_stream_is_a_clear_error(tmp_path):
    """NGAS without a Stream for the marker type cannot hold empty files: say what to add."""
    with NgasDouble(tmp_path / "ngas", mime_types=SAMPLE_CONFIG_MIME_TYPES) as double:
        repo = NgasArtifactRepository(f"ngas://127.0.0.1:{double.port}/run")
        (tmp_path / "e").write_bytes(b"")
        with pytest.raises(MlflowException, match=r"no <Stream> for application/x-mlpipe-empty"):
            repo.log_artifact(str(tmp_path / "e"))
        assert double.files == {}  # not stored as octet-stream either
        (tmp_path / "f").write_text("f")
        repo.log_artifact(str(tmp_path / "f"))  # other files are not affected
        assert [f.path for f in repo.list_artifacts()] == ["f"]


# Rendered in a child process: importing ansible replaces sys.intern in the importing
# process (ansible-core's SysInternPatch), and torch._dynamo, imported later by the
# PyTorch plugin's tests in the same pytest worker, refuses to start after that.
_RENDER = """
import json, sys
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
variables, template = json.load(sys.stdin)
variables = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in variables.items()}
templar = Templar(loader=DataLoader(), variables=variables)
sys.stdout.write(templar.template(trust_as_template(template)))
"""


def _render_ngas_config(**overrides: object) -> ET.Element:
    """roles/ngas's ngamsServer.conf.j2 rendered by Ansible with the role's defaults and vars."""
    role = REPO / "roles" / "ngas"
    variables: dict[str, object] = {}
    for part in ("defaults", "vars"):
        variables.update(yaml.safe_load((role / part / "main.yml").read_text()))
    variables.update(
        inventory_hostname="ngas-host",
        ansible_managed="managed",
        ansible_facts={"fqdn": "ngas-host", "default_ipv4": {"address": "10.0.0.5"}},
        **overrides,
    )
    template = (role / "templates" / "ngamsServer.conf.j2").read_text()
    done = subprocess.run(
        [sys.executable, "-c", _RENDER],
        input=json.dumps([variables, template]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return ET.fromstring(done.stdout)


@pytest.mark.parametrize(
    "mime_types",
    [
        None,
        [{"mime_type": "text/plain", "extension": "txt"}],
        [{"mime_type": "text/plain", "extension": "txt"}, EMPTY_TYPE_ENTRY],
    ],
    ids=["defaults", "site-list-without-it", "site-list-with-it"],
)
def test_ngas_role_declares_the_marker_mime_type(mime_types):
    """Real NGAS accepts only mime types with a <Stream>: the role always renders the marker's."""
    cfg = _render_ngas_config(**({} if mime_types is None else {"ngas_mime_types": mime_types}))
    streams = [s for s in cfg.iter("Stream") if s.get("MimeType") == EMPTY_MIME]
    maps = [m for m in cfg.iter("MimeTypeMap") if m.get("MimeType") == EMPTY_MIME]
    assert len(streams) == 1 and len(maps) == 1
    assert streams[0].get("PlugIn") == "ngamsGenDapi"
    assert [r.get("StorageSetId") for r in streams[0].iter("StorageSetRef")] == ["volume1"]
    # the double (and the real NGAS the tests build) is configured like the role
    role_vars = yaml.safe_load((REPO / "roles" / "ngas" / "vars" / "main.yml").read_text())
    role_types = {m["mime_type"] for m in role_vars["__ngas_mlpipe_mime_types"]}
    assert role_types == set(MLPIPE_STREAM_MIME_TYPES) == {EMPTY_MIME}


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


# ----------------------------------------------- re-running a log (issue 11 item 5)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> int:
    """The repository's client (made on first use from the config) retries once, quickly."""
    monkeypatch.setenv("MLPIPE_NGAS_RETRIES", "1")
    monkeypatch.setenv("MLPIPE_NGAS_BACKOFF", "0.01")
    return 1


def _tree(root: Path) -> dict[str, bytes]:
    """A tree with empty files and a marker look-alike among the first ones (sorted)."""
    files = {
        "a_empty.txt": b"",
        "b.bin": os.urandom(3000),
        "c_marker.txt": EMPTY_MARKER,
        "d/__init__.py": b"",
        "d/e.txt": b"eee",
        "f.txt": b"ffff",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _versions(ngas_client, repo: NgasArtifactRepository) -> dict[str, list[int]]:
    """Every version NGAS holds below the repository, by artifact path."""
    root = repo._file_id() + "/"
    out: dict[str, list[int]] = {}
    for row in ngas_client.list(root, all_versions=True):
        out.setdefault(row.file_id[len(root) :], []).append(row.version)
    return out


def _download(repo: NgasArtifactRepository, dest: Path) -> dict[str, bytes]:
    dest.mkdir()
    repo.download_artifacts("", str(dest))
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def test_log_artifacts_failed_half_way_then_rerun_finishes_without_duplicates(
    repo, ngas_client, ngas_faults, tmp_path, monkeypatch, caplog
):
    _fast_retries(monkeypatch)
    files = _tree(tmp_path / "t")
    # QARCHIVEs: a_empty.txt 1, b.bin 1, c_marker.txt 2 (text/plain has no Stream: refused,
    # then stored as octet-stream), d/__init__.py 1; so d/e.txt, the 5th file, fails.
    ngas_faults.faults.fail_archive_after = 5
    with pytest.raises(MlflowException, match=r"Run the same log again") as failed:
        repo.log_artifacts(str(tmp_path / "t"))
    assert "4 file(s) archived and 0 already stored before d/e.txt, 2 not logged" in str(
        failed.value
    )
    # What a failed log leaves: the files before the failure, each once.
    assert _versions(ngas_client, repo) == {
        "a_empty.txt": [1],
        "b.bin": [1],
        "c_marker.txt": [1],
        "d/__init__.py": [1],
    }
    ngas_faults.faults.clear()
    archives, queries = ngas_faults.count("QARCHIVE"), ngas_faults.count("QUERY")
    with caplog.at_level("INFO", logger="mlpipe.storage.mlflow_ngas"):
        repo.log_artifacts(str(tmp_path / "t"))
    assert ngas_faults.count("QARCHIVE") - archives == 2  # d/e.txt and f.txt only
    assert ngas_faults.count("QUERY") - queries == 1  # one listing for the whole tree
    assert "2 file(s) archived, 4 skipped" in caplog.text
    assert _versions(ngas_client, repo) == {rel: [1] for rel in files}
    assert _download(repo, tmp_path / "out") == files
    # Once more: nothing to do, nothing archived.
    archives = ngas_faults.count("QARCHIVE")
    with caplog.at_level("INFO", logger="mlpipe.storage.mlflow_ngas"):
        repo.log_artifacts(str(tmp_path / "t"))
    assert ngas_faults.count("QARCHIVE") == archives
    assert "0 file(s) archived, 6 skipped" in caplog.text
    assert _versions(ngas_client, repo) == {rel: [1] for rel in files}


def test_rerun_archives_changed_files_as_new_versions_and_reads_return_them(
    repo, ngas_client, tmp_path
):
    tree = tmp_path / "t"
    files = _tree(tree)
    repo.log_artifacts(str(tree), artifact_path="dir")
    b = bytearray(files["b.bin"])
    b[1500] ^= 0xFF  # same size, other crc32
    changed = {
        "b.bin": bytes(b),
        "a_empty.txt": b"now something",  # empty -> not empty
        "f.txt": b"",  # not empty -> empty
        "d/e.txt": EMPTY_MARKER,  # the marker's bytes, as a real file
    }
    for rel, data in changed.items():
        (tree / rel).write_bytes(data)
    repo.log_artifacts(str(tree), artifact_path="dir")
    expected = {f"dir/{rel}": [1, 2] if rel in changed else [1] for rel in files}
    assert _versions(ngas_client, repo) == expected
    got = _download(repo, tmp_path / "out")
    assert got == {f"dir/{rel}": changed.get(rel, data) for rel, data in files.items()}
    # log_artifact alone: the same bytes add nothing, other bytes add a version.
    repo.log_artifact(str(tree / "b.bin"), "dir")
    repo.log_artifact(str(tree / "f.txt"), "dir")  # an empty file over an intact marker
    assert _versions(ngas_client, repo)["dir/b.bin"] == [1, 2]
    assert _versions(ngas_client, repo)["dir/f.txt"] == [1, 2]
    (tree / "b.bin").write_bytes(b"third")
    repo.log_artifact(str(tree / "b.bin"), "dir")
    assert _versions(ngas_client, repo)["dir/b.bin"] == [1, 2, 3]
    dest = tmp_path / "b3"
    repo._download_file("dir/b.bin", str(dest))
    assert dest.read_bytes() == b"third"
    # Back to older bytes: only the newest version counts (reads return it), so a new one.
    (tree / "b.bin").write_bytes(files["b.bin"])  # version 1's bytes
    repo.log_artifact(str(tree / "b.bin"), "dir")
    assert _versions(ngas_client, repo)["dir/b.bin"] == [1, 2, 3, 4]
    (tree / "f.txt").write_bytes(files["f.txt"])  # version 1's bytes
    repo.log_artifacts(str(tree), artifact_path="dir")
    versions = _versions(ngas_client, repo)
    assert versions["dir/b.bin"] == [1, 2, 3, 4] and versions["dir/f.txt"] == [1, 2, 3]
    got = _download(repo, tmp_path / "out2")
    assert got["dir/b.bin"] == files["b.bin"] and got["dir/f.txt"] == files["f.txt"]


@pytest.mark.parametrize("log_tree", [True, False], ids=["log_artifacts", "log_artifact"])
def test_logging_an_empty_file_again_repairs_a_damaged_marker(
    repo, ngas_server, tmp_path, log_tree
):
    """A damaged marker of the same size is not "the same empty file": a new good version."""
    fid = repo._file_id("pkg", "__init__.py")
    _archive_as_marker(ngas_server.url, fid, b"\0" * len(EMPTY_MARKER))
    (tmp_path / "t" / "pkg").mkdir(parents=True)
    (tmp_path / "t" / "pkg" / "__init__.py").write_bytes(b"")
    if log_tree:
        repo.log_artifacts(str(tmp_path / "t"))
    else:
        repo.log_artifact(str(tmp_path / "t" / "pkg" / "__init__.py"), "pkg")
    dest = tmp_path / "got" / "__init__.py"
    repo._download_file("pkg/__init__.py", str(dest))  # the newest: the good marker
    assert dest.read_bytes() == b""


@pytest.mark.parametrize("log_tree", [True, False], ids=["log_artifacts", "log_artifact"])
def test_failed_listing_fails_the_log_and_archives_nothing(
    repo, ngas_client, ngas_faults, tmp_path, monkeypatch, log_tree
):
    """A 5xx listing is an error, never "nothing stored" (which would archive everything)."""
    retries = _fast_retries(monkeypatch)
    files = _tree(tmp_path / "t")
    repo.log_artifacts(str(tmp_path / "t"), artifact_path="one")  # stored once
    before = _versions(ngas_client, repo)
    archives = ngas_faults.count("QARCHIVE")
    ngas_faults.faults.fail_5xx = retries + 1  # the listing and its retry; archives would pass
    with pytest.raises(MlflowException, match=r"Nothing was archived") as failed:
        if log_tree:
            repo.log_artifacts(str(tmp_path / "t"), artifact_path="one")
        else:
            repo.log_artifact(str(tmp_path / "t" / "b.bin"), "one")
    assert "HTTP 503" in str(failed.value)
    assert ngas_faults.faults.fail_5xx == 0  # the fault was used up by the listing
    assert ngas_faults.count("QARCHIVE") == archives
    assert _versions(ngas_client, repo) == before == {f"one/{rel}": [1] for rel in files}
