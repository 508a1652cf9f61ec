"""The NGAS artifact plugin behind real MLflow tracking servers (client-side and proxied)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import mlflow
import pytest

from mlpipe.storage import NgasClient

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
