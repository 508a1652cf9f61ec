"""The NGAS artifact plugin behind real MLflow tracking servers (client-side and proxied)."""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys
import uuid
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import FileInfo as MlflowFileInfo

from mlpipe.storage import NgasClient
from mlpipe.storage.ngas import EMPTY_MARKER, EMPTY_MIME

LOAD_SCRIPT = """
import sys, mlflow, numpy as np
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.sklearn.load_model(f"models:/{sys.argv[2]}@production")
print("PRED", model.predict(np.array([[1.0], [2.0]])).round(6).tolist())
"""


def _log_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "sub" / "deep").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.json").write_text('{"b": 1}\n')
    (tree / "sub" / "deep" / "c.bin").write_bytes(os.urandom(300_000))
    return tree


def _tracking(url: str) -> None:
    mlflow.set_tracking_uri(url)


@pytest.mark.parametrize(
    "server_fixture", ["mlflow_server_ngas_client", "mlflow_server_ngas_proxied"]
)
def test_artifact_round_trip_through_mlflow(request, server_fixture, ngas_server, tmp_path):
    server = request.getfixturevalue(server_fixture)
    _tracking(server.url)
    tree = _log_tree(tmp_path)
    mlflow.set_experiment(f"rt-{uuid.uuid4().hex[:6]}")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tree))
        mlflow.log_artifact(str(tree / "a.txt"), artifact_path="again")
    client = mlflow.MlflowClient()
    top = {(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id)}
    assert top == {("a.txt", False), ("again", True), ("sub", True)}
    sub = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id, "sub")}
    assert sub == {("sub/b.json", False, 9), ("sub/deep", True, None)}
    out = tmp_path / "out"
    out.mkdir()
    got = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(out)))
    for rel in ("a.txt", "sub/b.json", "sub/deep/c.bin"):
        assert (got / rel).read_bytes() == (tree / rel).read_bytes(), rel
    assert (got / "again" / "a.txt").read_text() == "alpha\n"
    # The bytes really are in NGAS, under path-like ids.
    ngas = NgasClient(ngas_server.url)
    ids = [f.file_id for f in ngas.list("") if f.file_id.endswith("sub/deep/c.bin")]
    assert any(run.info.run_id in i for i in ids), ids


@pytest.mark.parametrize(
    "server_fixture", ["mlflow_server_ngas_client", "mlflow_server_ngas_proxied"]
)
def test_model_registry_round_trip_other_process(request, server_fixture, tmp_path):
    from sklearn.linear_model import LinearRegression

    server = request.getfixturevalue(server_fixture)
    _tracking(server.url)
    mlflow.set_experiment(f"reg-{uuid.uuid4().hex[:6]}")
    import numpy as np

    x = np.array([[0.0], [1.0], [3.0]])
    model = LinearRegression().fit(x, 2 * x[:, 0] + 1)
    name = f"m{uuid.uuid4().hex[:8]}"
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model")
    mv = mlflow.register_model(info.model_uri, name)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "production", mv.version)
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, server.url, name],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "PRED [3.0, 5.0]" in proc.stdout


def _empty_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "with-empties"
    (tree / "pkg" / "sub").mkdir(parents=True)
    (tree / "data.txt").write_text("some data\n")
    (tree / "empty.txt").write_bytes(b"")
    (tree / "pkg" / "__init__.py").write_bytes(b"")
    (tree / "pkg" / "sub" / ".keep").write_bytes(b"")  # an empty marker file in a directory
    (tree / "looks-like-marker.bin").write_bytes(EMPTY_MARKER)
    return tree


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _listed_size_of_empty(server_fixture: str) -> int | None:
    """The size list_artifacts shows for an empty file.

    The plugin reports 0 (client-side: that is what the client sees). Proxied, MLflow's
    server turns each FileInfo into a proto with ``if self.file_size:``, so a size of 0
    is left out and the client reads None, whatever the artifact store (its own local
    one too). The file is still listed, as a file. If MLflow fixes that, the check
    below fails: then expect 0 in both configurations.
    """
    if server_fixture == "mlflow_server_ngas_client":
        return 0
    assert not MlflowFileInfo("e", False, 0).to_proto().HasField("file_size")
    return None


@pytest.mark.parametrize(
    "server_fixture", ["mlflow_server_ngas_client", "mlflow_server_ngas_proxied"]
)
def test_empty_files_round_trip_through_mlflow(request, server_fixture, ngas_server, tmp_path):
    server = request.getfixturevalue(server_fixture)
    _tracking(server.url)
    tree = _empty_tree(tmp_path)
    mlflow.set_experiment(f"empty-{uuid.uuid4().hex[:6]}")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tree), artifact_path="tree")
        mlflow.log_artifact(str(tree / "empty.txt"))
    client = mlflow.MlflowClient()
    rid = run.info.run_id
    zero = _listed_size_of_empty(server_fixture)

    def listing(path: str | None = None) -> set[tuple[str, bool, int | None]]:
        return {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(rid, path)}

    assert listing() == {("empty.txt", False, zero), ("tree", True, None)}
    assert listing("tree") == {
        ("tree/data.txt", False, 10),
        ("tree/empty.txt", False, zero),
        ("tree/looks-like-marker.bin", False, len(EMPTY_MARKER)),
        ("tree/pkg", True, None),
    }
    assert listing("tree/pkg") == {
        ("tree/pkg/__init__.py", False, zero),
        ("tree/pkg/sub", True, None),
    }
    assert listing("tree/pkg/sub") == {("tree/pkg/sub/.keep", False, zero)}
    out = tmp_path / "out"
    out.mkdir()
    got = Path(mlflow.artifacts.download_artifacts(run_id=rid, dst_path=str(out)))
    assert _files(got / "tree") == _files(tree)  # empty stays empty, the look-alike itself
    assert (got / "empty.txt").read_bytes() == b""
    one = mlflow.artifacts.download_artifacts(
        run_id=rid, artifact_path="tree/pkg/__init__.py", dst_path=str(tmp_path / "one")
    )
    assert Path(one).read_bytes() == b""
    # NGAS holds the empty ones as markers (never an empty body: it would answer 411)
    ngas = NgasClient(ngas_server.url)
    rows = {r.file_id.rsplit("/tree/", 1)[-1]: r for r in ngas.list("") if rid in r.file_id}
    assert {k for k, r in rows.items() if r.mime_type == EMPTY_MIME} == {
        "empty.txt",
        "pkg/__init__.py",
        "pkg/sub/.keep",
    } | {k for k in rows if k.endswith("/empty.txt")}
    assert rows["looks-like-marker.bin"].mime_type != EMPTY_MIME


@pytest.mark.parametrize(
    "server_fixture", ["mlflow_server_ngas_client", "mlflow_server_ngas_proxied"]
)
def test_model_with_empty_code_paths_init_round_trips(request, server_fixture, tmp_path):
    from sklearn.linear_model import LinearRegression

    server = request.getfixturevalue(server_fixture)
    _tracking(server.url)
    mlflow.set_experiment(f"code-{uuid.uuid4().hex[:6]}")
    import numpy as np

    pkg = tmp_path / "src" / f"helpers_{uuid.uuid4().hex[:6]}"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_bytes(b"")
    (pkg / "features.py").write_text("def double(x):\n    return 2 * x\n")
    x = np.array([[0.0], [1.0], [3.0]])
    model = LinearRegression().fit(x, 2 * x[:, 0] + 1)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", code_paths=[str(pkg)])
    location = mlflow.get_logged_model(info.model_id).artifact_location
    code_uri = f"{location}/code/{pkg.name}"
    listing = {
        posixpath.basename(f.path): (f.is_dir, f.file_size)
        for f in mlflow.artifacts.list_artifacts(artifact_uri=code_uri)
    }
    assert listing == {
        "__init__.py": (False, _listed_size_of_empty(server_fixture)),
        "features.py": (False, len((pkg / "features.py").read_bytes())),
    }
    got = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "m")))
    assert _files(got / "code" / pkg.name) == _files(pkg)
    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert loaded.predict(np.array([[2.0]])).round(6).tolist() == [5.0]
