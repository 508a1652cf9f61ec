"""MLflow artifacts in Google Cloud Storage (``gs://``, issue 17 item 4).

A real MLflow server proxies artifacts to ``gs://<bucket>/mlflow`` on a real GCS
API server on loopback (fake-gcs-server, tests/gcs_server.py; the server's
google-cloud-storage client reaches it through ``STORAGE_EMULATOR_HOST``), behind
a proxy that refuses with 403, as GCS does, every request needing a permission
that Terraform's custom role for the mlflow service account (evaluated from
terraform/ by Terraform itself) does not grant. So the module runs with exactly
what the deployed platform has on GCP with Terraform's mlflow-artifacts bucket:

- every logged file, empty ones included, round-trips byte for byte and is listed
  with its size, and really lands in the bucket;
- a registered model version is read through the local read cache: the second
  load makes no request to the bucket (nor to MLflow's artifact API);
- every permission of that role is used (none to spare), and what it leaves out
  (the client's best-effort bucket-metadata fetch) is refused without harm;
- a bucket that refuses everything is an error, never an empty listing;
- a client that stores artifacts itself (``--no-serve-artifacts``, mlpipe[gcs])
  round-trips too;
- the mlflow role's preflight refuses a gs:// destination that names no valid bucket.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import FileInfo as MlflowFileInfo
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

import gcs_server
from http_faults import FaultyProxy
from mlpipe.models.weather import WeatherModel
from mlpipe.storage import ReadCache
from mlpipe.tasks.model_cache import ModelCache
from procs import MLFLOW_FAIL_FAST, ansible_json, free_port

TOP = Path(__file__).resolve().parents[2]
BUCKET = "mlpipe-test-mlflow-artifacts"
EMPTY = b""
FAST = MLFLOW_FAIL_FAST


@dataclass(frozen=True)
class Role:
    permissions: frozenset[str]
    grants: frozenset[tuple[str, str, str]]  # (bucket key, role, member)


@pytest.fixture(scope="module")
def terraform_role(tmp_path_factory: pytest.TempPathFactory) -> Role:
    """The prod environment with mlflow_artifact_store = "gcs", evaluated by Terraform."""
    sys.path.insert(0, str(TOP / "tests" / "terraform"))
    from test_tf_wiring import Platform

    platform = Platform(tmp_path_factory.mktemp("tf-gcs"))
    platform.build(mlflow_artifact_store="gcs")
    assert set(platform.storage_roles) == {"mlflowArtifacts"}
    return Role(
        frozenset(platform.storage_roles["mlflowArtifacts"]["permissions"]),
        frozenset(
            (g["bucket"], g["role"], g["member"]) for g in platform.storage["grants"].values()
        ),
    )


@dataclass
class Bucket:
    server: gcs_server.GcsServer
    proxy: FaultyProxy  # STORAGE_EMULATOR_HOST: every client goes through it
    unknown: list[str] = field(default_factory=list)

    def mark(self) -> int:
        return len(self.proxy.seen)

    def requests(self, since: int = 0) -> list[tuple[str, str]]:
        return self.proxy.seen[since:]


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory, terraform_role: Role) -> Iterator[Bucket]:
    port = free_port()
    proxy = FaultyProxy(f"http://127.0.0.1:{port}")
    proxy.status = 403
    unknown: list[str] = []

    def deny(method: str, target: str) -> bool:
        try:
            return gcs_server.permission(method, target) not in terraform_role.permissions
        except AssertionError as exc:
            unknown.append(str(exc))
            return True

    proxy.deny = deny
    with proxy:
        server = gcs_server.start(tmp_path_factory.mktemp("gcs"), port, proxy.url)
        server.create_bucket(BUCKET)
        yield Bucket(server, proxy, unknown)
        server.stop()


@pytest.fixture(scope="module")
def proxied(mlflow_server_factory, gcs):
    """MLflow proxying artifacts to gs://BUCKET/mlflow (the role's ExecStart, in short)."""
    return mlflow_server_factory(
        "gcs-proxied",
        "--artifacts-destination",
        f"gs://{BUCKET}/mlflow",
        env={"STORAGE_EMULATOR_HOST": gcs.proxy.url, **FAST},
    )


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch, proxied) -> MlflowClient:
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    mlflow.set_tracking_uri(proxied.url)
    return MlflowClient(proxied.url)


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def sample_tree(root: Path) -> dict[str, bytes]:
    """Files MLflow logs as a matter of course, and two that take the other upload paths."""
    files = {
        "code/pkg/__init__.py": EMPTY,  # an empty module in a model's code_paths
        "markers/.done": EMPTY,
        "params.json": json.dumps({"alpha": 0.01}).encode(),
        "nested/deep/er/data.bin": os.urandom(300_000),
        # above google-cloud-storage's 8 MiB multipart limit: a resumable upload
        "big/weights.bin": os.urandom(9 * 1024 * 1024 + 17),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def listed(client: MlflowClient, run_id: str, path: str | None = None) -> dict[str, int | None]:
    """Every file under ``path`` with the size MLflow lists, walking directories."""
    out: dict[str, int | None] = {}
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            out.update(listed(client, run_id, info.path))
        else:
            out[info.path] = info.file_size
    return out


# ------------------------------------------------------------------ proxied
def test_every_logged_file_round_trips_through_the_bucket(client_env, gcs, tmp_path):
    files = sample_tree(tmp_path / "src")
    mlflow.set_experiment(f"gcs-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "src"), "tree")
        mlflow.log_text("", "empty.txt")
    run_id = run.info.run_id

    # Proxied, MLflow's server leaves a size of 0 out of its listing proto (``if
    # self.file_size:``), whatever the store: the client reads None for an empty file.
    # Should MLflow fix that, this fails: then expect 0 (as the client-side test does).
    assert not MlflowFileInfo("e", False, 0).to_proto().HasField("file_size")
    assert listed(client_env, run_id) == {
        "empty.txt": None,
        **{f"tree/{rel}": len(data) or None for rel, data in files.items()},
    }
    out = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "out")))
    assert tree(out / "tree") == files
    assert (out / "empty.txt").read_bytes() == EMPTY

    # Stored in the bucket, under the destination's prefix, with the same sizes.
    stored = gcs.server.objects(BUCKET, "mlflow/")
    mine = {k.split(f"/{run_id}/artifacts/", 1)[1]: v for k, v in stored.items() if run_id in k}
    assert mine == {"empty.txt": 0, **{f"tree/{k}": len(v) for k, v in files.items()}}


def test_a_registered_version_is_read_from_the_cache_with_no_bucket_request(
    client_env, gcs, weather_raw, tmp_path
):
    plugin = WeatherModel()
    frame = plugin.preprocess(weather_raw / "seattle-2012.csv", {"lags": 1})
    name = f"gcs-{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment(f"gcs-model-{name}")
    with mlflow.start_run():
        plugin.log_model(plugin.train(frame, {"alpha": 1e-3}), frame, name)
    client_env.set_registered_model_alias(name, "production", "1")
    rows = frame[plugin.feature_columns(frame)].head(10)
    expected = list(mlflow.pyfunc.load_model(f"models:/{name}@production").predict(rows))

    cache_dir = tmp_path / "cache"
    first_mark = gcs.mark()
    first = ModelCache(ReadCache(cache_dir, mode="good"), client_env).get(f"{name}@production")
    assert first.downloaded and len(gcs.requests(first_mark)) > 0
    second_mark = gcs.mark()
    again = ModelCache(ReadCache(cache_dir, mode="good"), client_env).get(f"{name}@production")
    assert not again.downloaded and again.path == first.path
    assert gcs.requests(second_mark) == []  # zero requests to the bucket
    assert list(mlflow.pyfunc.load_model(str(again.path)).predict(rows)) == expected


def test_deleting_a_runs_artifacts_deletes_the_objects(client_env, gcs):
    """What `mlflow gc` does for a deleted run: the artifact API's DELETE, the server's delete."""
    mlflow.set_experiment(f"gcs-gc-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        mlflow.log_text("bye", "gone/file.txt")
        mlflow.log_text("", "gone/empty.txt")
        mlflow.log_text("stays", "kept.txt")
    run_id = run.info.run_id
    mine = {
        k.rsplit("/artifacts/", 1)[1] for k in gcs.server.objects(BUCKET, "mlflow/") if run_id in k
    }
    assert mine == {"gone/file.txt", "gone/empty.txt", "kept.txt"}
    get_artifact_repository(run.info.artifact_uri).delete_artifacts("gone")
    mine = {
        k.rsplit("/artifacts/", 1)[1] for k in gcs.server.objects(BUCKET, "mlflow/") if run_id in k
    }
    assert mine == {"kept.txt"}


def test_the_mlflow_service_account_has_exactly_the_permissions_used(gcs, terraform_role):
    """Last of the proxied tests (file order; one xdist group). They all passed with only
    the role's permissions; here: each permission was needed, and what was refused was
    the client's optional bucket-metadata fetch (google-cloud-storage caches a fallback
    on 403 and carries on)."""
    assert not gcs.unknown, gcs.unknown
    asked = [(gcs_server.permission(m, t), m, t) for m, t in gcs.requests()]
    granted = {perm for perm, _, _ in asked if perm in terraform_role.permissions}
    refused = {perm for perm, _, _ in asked if perm not in terraform_role.permissions}
    if "storage.objects.delete" not in granted | refused:
        pytest.fail("the proxied tests above did not run first (run the module whole)")
    assert granted == terraform_role.permissions
    assert refused <= {"storage.buckets.get"}, refused
    assert gcs.proxy.failed == sum(1 for perm, _, _ in asked if perm in refused)
    # granted to the mlflow tier's service account, on that bucket only
    on_bucket = {g for g in terraform_role.grants if g[0] == "mlflow-artifacts"}
    assert on_bucket == {
        ("mlflow-artifacts", "custom-role:mlflowArtifacts", "serviceAccount:mlflow@sa")
    }
    assert not {g for g in terraform_role.grants if g[1].startswith("custom-role:")} - on_bucket


# --------------------------------------------------------------- client-side
def test_a_client_storing_artifacts_itself_round_trips(
    mlflow_server_factory, gcs, monkeypatch, tmp_path
):
    """--no-serve-artifacts: the client writes gs:// itself (mlpipe[gcs]); its listing
    shows an empty file with size 0 (no server proto in between)."""
    server = mlflow_server_factory(
        "gcs-client", "--default-artifact-root", f"gs://{BUCKET}/client", "--no-serve-artifacts"
    )
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.proxy.url)
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment(f"gcs-client-{uuid.uuid4().hex[:8]}")
    files = {"a/__init__.py": EMPTY, "a/b.txt": b"bee"}
    for rel, data in files.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_bytes(data)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "src"))
    assert run.info.artifact_uri.startswith(f"gs://{BUCKET}/client/")
    out = Path(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "o"))
    )
    assert tree(out) == files
    assert listed(MlflowClient(server.url), run.info.run_id) == {"a/__init__.py": 0, "a/b.txt": 3}


def test_a_refusing_bucket_is_an_error_not_an_empty_listing(
    mlflow_server_factory, gcs, monkeypatch
):
    """A store that answers 403 to everything (the grant missing on GCP) is never read as
    "no files": the server answers 500 and says why, the client raises."""
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    with FaultyProxy(gcs.server.url) as refusing:
        refusing.status = 403
        refusing.deny = lambda method, target: True
        server = mlflow_server_factory(
            "gcs-refusing",
            "--artifacts-destination",
            f"gs://{BUCKET}/mlflow",
            env={"STORAGE_EMULATOR_HOST": refusing.url, **FAST},
        )
        client = MlflowClient(server.url)
        run = client.create_run(client.create_experiment(f"gcs-403-{uuid.uuid4().hex[:8]}"))
        with pytest.raises(MlflowException):
            client.list_artifacts(run.info.run_id)
        assert refusing.failed > 0
        r = requests.get(
            f"{server.url}/api/2.0/mlflow-artifacts/artifacts",
            params={"path": f"{run.info.experiment_id}/{run.info.run_id}/artifacts"},
            timeout=60,
        )
        assert r.status_code == 500, (r.status_code, r.text[:500])
        log = (server.workdir / "server.log").read_text(errors="replace")
        assert "403" in log and "Forbidden" in log, log[-2000:]


# --------------------------------------------------------------- the role
PREFLIGHT = """\
- name: The mlflow role's preflight, one host per destination
  hosts: all
  gather_facts: true
  tasks:
    - name: Run the preflight
      ansible.builtin.include_role:
        name: mlflow
        tasks_from: preflight.yml
"""


def test_the_role_refuses_a_gs_destination_without_a_valid_bucket(tmp_path):
    cases = {
        "good": "gs://mlpipe-demo-123-mlpipe-mlflow-artifacts/mlflow",
        "bare": "gs://mlpipe-demo-123-mlpipe-mlflow-artifacts",
        "upper": "gs://Not_A_Bucket/mlflow",
        "short": "gs://ab",
        "empty": "gs://",
    }
    python = sys.executable
    inventory = {
        "all": {
            "hosts": {
                name: {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": python,
                    "mlflow_artifacts_destination": dest,
                }
                for name, dest in cases.items()
            },
            "vars": {
                "mlflow_version": "3.17.2",  # no wheel needed to find the release
                "mlflow_backend": "sqlite",
                "mlflow_listen_address": "127.0.0.1",
                "mlflow_admin_password": "Xy7gT4kq9LmZpQ2w",
            },
        }
    }
    (tmp_path / "hosts.yml").write_text(json.dumps(inventory))
    proc, out = ansible_json(tmp_path, PREFLIGHT, "-i", "hosts.yml")
    failed: dict[str, str] = {}
    for play in out["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed"):
                    failed[host] = f"{task['task']['name']}: {result.get('msg')}"
    assert set(failed) == {"upper", "short", "empty"}, proc.stdout[-3000:] + proc.stderr
    for host in ("upper", "short", "empty"):
        assert f"mlflow_artifacts_destination={cases[host]} " in failed[host], failed[host]
        assert "gs://BUCKET" in failed[host]
    for host in ("upper", "short"):
        assert "Check the gs:// artifact destination:" in failed[host], failed[host]
        assert "bucket_mlflow_artifacts" in failed[host]  # where a GCP site's name comes from
