"""``--executor slurm`` and ``--via slurm`` against a real Slurm (``slurm_cluster``: slurmctld,
slurmd, slurmdbd on MariaDB, munged on this host's loopback) with real MLflow and NGAS.

Jobs run on the same host as the test, so the shared work dir is a temp dir and the jobs
inherit the test's environment (sbatch exports it): MLflow, NGAS and the config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

TESTS = Path(__file__).resolve().parents[1]
EXAMPLE = TESTS.parent / "tasks_py" / "examples" / "weather"
MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")


@pytest.fixture
def slurm_env(slurm_cluster, task_env, tmp_path, monkeypatch) -> dict[str, str]:
    """task_env plus the Slurm cluster, a work dir and this venv's python on the 'nodes'."""
    work = tmp_path / "slurm-work"
    work.mkdir()
    env = {
        **task_env,
        **slurm_cluster.env,
        "MLPIPE_SLURM_WORK_DIR": str(work),
        "MLPIPE_SLURM_PYTHON": sys.executable,
        "MLPIPE_SLURM_PARTITION": slurm_cluster.partition,
        "MLPIPE_SLURM_POLL_INTERVAL": "0.5",
        "MLPIPE_SLURM_POLL_MAX": "2",
        "PYTHONPATH": str(TESTS),  # the slow model plugin (tests/slurm/slow_model.py)
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def pipeline_copy(tmp_path: Path, tag: str, doc: dict | None = None) -> Path:
    work = tmp_path / "pipe"
    shutil.copytree(EXAMPLE / "raw", work / "raw")
    if doc is None:
        doc = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
    doc = {**doc, "name": f"p-{tag}", "experiment": f"pipe-{tag}"}
    (work / "pipeline.yaml").write_text(yaml.safe_dump(doc))
    return work / "pipeline.yaml"


def run(path: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MLPIPE, "pipeline", "run", str(path), "--executor", "slurm", "--json", *extra],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=600,
    )


def jobs_named(cluster, prefix: str) -> list[tuple[str, str, str]]:
    """(job id, name, state) of the cluster's jobs whose name starts with ``prefix``."""
    out = cluster.run("sacct", "-X", "-n", "-P", "-o", "JobID,JobName%200,State", "-S", "now-1days")
    assert out.returncode == 0, out.stderr
    rows = [tuple(line.split("|")) for line in out.stdout.splitlines() if line]
    return [r for r in rows if r[1].startswith(prefix)]


def test_example_pipeline_under_slurm_registers_a_model_and_reruns_nothing(
    slurm_env, slurm_cluster, ngas_client, tmp_path
):
    tag = slurm_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    name = slurm_env["MLPIPE_MODEL_NAME"]
    path = pipeline_copy(tmp_path, tag)
    steps = list(yaml.safe_load(path.read_text())["tasks"])

    proc = run(path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["counts"] == {"ran": len(steps), "skipped": 0, "failed": 0, "blocked": 0}
    jobs = jobs_named(slurm_cluster, f"mlpipe-p-{tag}-")
    assert sorted(j[1] for j in jobs) == sorted(f"mlpipe-p-{tag}-{s}" for s in steps)
    assert {j[2] for j in jobs} == {"COMPLETED"}
    by_step = {j[1].rsplit("-", 1)[-1]: j[0] for j in jobs}
    # each step ran as its job, on the node, and said so in its log streamed to the console
    assert f"train: submitted as Slurm job {by_step['train']} after job(s)" in proc.stderr
    assert f"[train {by_step['train']}]" in proc.stderr

    client = mlflow.MlflowClient(slurm_env["MLPIPE_MLFLOW_TRACKING_URI"])
    assert summary["steps"]["train"]["outputs"] == {"model": f"models:/{name}/1"}
    assert client.get_model_version_by_alias(name, "production").version == "1"
    train = client.get_run(summary["steps"]["train"]["run_id"])
    assert train.info.status == "FINISHED"
    assert train.data.tags["mlpipe.executor"] == "slurm"
    assert train.data.tags["mlpipe.slurm.job_id"] == by_step["train"]
    assert train.data.tags["mlpipe.slurm.state"] == "COMPLETED"
    artifacts = {a.path for a in client.list_artifacts(train.info.run_id)}
    assert artifacts, "the model's artifacts are on NGAS through MLflow"
    prefix = slurm_env["MLPIPE_PIPELINE_DATA_PREFIX"]
    assert ngas_client.exists(f"{prefix}/predictions/{name}-v1/seattle-2015.csv")

    again = run(path)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["counts"]["skipped"] == len(steps), again.stderr
    assert "submitted as Slurm job" not in again.stderr
    assert len(jobs_named(slurm_cluster, f"mlpipe-p-{tag}-")) == len(steps)  # nothing new
