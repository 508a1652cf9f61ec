"""``--executor slurm`` and ``--via slurm`` against a real Slurm (``slurm_cluster``: slurmctld,
slurmd, slurmdbd on MariaDB, munged on this host's loopback) with real MLflow and NGAS.

Jobs run on the same host as the test, so the shared work dir is a temp dir and the jobs
inherit the test's environment (sbatch exports it): MLflow, NGAS and the config.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from procs import free_port, wait_until
from slurm.pipelines import first_steps

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


FAILING = {
    "outputs": ["production", "predictions"],
    "tasks": {
        **first_steps(),
        # the slow model plugin outlasts this one-minute limit
        "train": {
            "task": "train",
            "inputs": {"data": "data"},
            "outputs": {"model": "trained"},
            "resources": {"time_limit": "1"},
        },
        "promote": {
            "task": "promote",
            "inputs": {"model": "trained"},
            "outputs": {"model": "production"},
        },
        # fails on the node: no such model
        "promote_missing": {
            "task": "promote",
            "params": {"model": "models:/no-such-model/1"},
            "outputs": {"model": "other"},
        },
        "infer": {
            "task": "infer",
            "inputs": {"data": "data", "model": "other"},
            "outputs": {"predictions": "predictions"},
        },
    },
}


def test_timeout_and_failing_step_are_reported_and_block_their_dependents(
    slurm_env, slurm_cluster, tmp_path
):
    tag = slurm_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    path = pipeline_copy(tmp_path, tag, FAILING)
    proc = run(path, env={"MLPIPE_MODEL_PLUGIN": "slurm.slow_model:SlowWeather"})
    assert proc.returncode == 1, proc.stderr
    steps = json.loads(proc.stdout)["steps"]
    status = {s: o["status"] for s, o in steps.items()}
    assert status == {
        "load": "ran",
        "preprocess": "ran",
        "train": "failed",
        "promote": "blocked",
        "promote_missing": "failed",
        "infer": "blocked",
    }, proc.stderr
    jobs = {j[1].rsplit("-", 1)[-1]: j for j in jobs_named(slurm_cluster, f"mlpipe-p-{tag}-")}
    train_job, train_state = jobs["train"][0], jobs["train"][2]
    assert train_state == "TIMEOUT"
    assert (
        f"step train: Slurm job {train_job} reached its time limit (TIMEOUT)"
        in (steps["train"]["summary"])
    )
    # the job died in the middle of its MLflow run: the run is FAILED and says why
    client = mlflow.MlflowClient(slurm_env["MLPIPE_MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(f"pipe-{tag}")
    (run_,) = client.search_runs([exp.experiment_id], "tags.`mlpipe.step` = 'train'")
    assert run_.info.status == "FAILED"
    assert run_.data.tags["mlpipe.slurm.state"] == "TIMEOUT"
    assert run_.data.tags["mlpipe.slurm.job_id"] == train_job
    assert f"MLflow run {run_.info.run_id} marked FAILED" in steps["train"]["summary"]

    # the step's own error, from its outcome file, with the job that ran it
    missing = steps["promote_missing"]
    assert "no-such-model" in missing["summary"] and missing["bad_input"] is True
    assert f"Slurm job {jobs['promote_missing'][0]} FAILED" in missing["summary"]
    # dependents never ran: their jobs were cancelled, no MLflow run of theirs exists
    for step in ("promote", "infer"):
        assert step not in jobs or jobs[step][2].startswith("CANCELLED"), jobs
        assert not client.search_runs([exp.experiment_id], f"tags.`mlpipe.step` = '{step}'")


@pytest.mark.parametrize(
    ("plugin", "param", "flavor"),
    [("weather", "alpha=0.001", "sklearn"), ("weather-torch", "lr=0.001", "pytorch")],
)
def test_train_via_slurm_registers_a_version_from_the_job(
    slurm_env, slurm_cluster, weather_raw, monkeypatch, plugin, param, flavor
):
    from mlpipe.tasks.context import TaskContext
    from mlpipe.tasks.registry import run_task

    monkeypatch.setenv("MLPIPE_MODEL_PLUGIN", plugin)  # here and, exported by sbatch, in the job
    ctx = TaskContext.from_config()
    raw = run_task("load-raw", {}, {"sources": [str(weather_raw / "seattle-2015.csv")]}, ctx=ctx)
    pre = run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": 2}, ctx=ctx)
    name = slurm_env["MLPIPE_MODEL_NAME"]
    assert pre.outputs["preprocessed"]
    data = f"{slurm_env['MLPIPE_PIPELINE_DATA_PREFIX']}/preprocessed/"
    # the job activates this venv and runs its python (as a site's venv on the nodes)
    venv = {
        "MLPIPE_SLURM_VENV": str(Path(sys.executable).parent.parent),
        "MLPIPE_SLURM_PYTHON": "python",
    }
    proc = subprocess.run(
        [MLPIPE, "train", data, "--via", "slurm", "-p", param],
        capture_output=True,
        text=True,
        env={**os.environ, **venv, "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"train: {name} version 1" in proc.stdout
    run_id = proc.stdout.split("train: MLflow run ", 1)[1].split()[0]
    # its own job (the cluster has run other train jobs: the id as a whole word, not a substring)
    submitted = re.search(r"submitted as Slurm job (\d+)\b", proc.stderr)
    assert submitted, proc.stderr
    (job,) = [
        j for j in jobs_named(slurm_cluster, "mlpipe-task-train-") if j[0] == submitted.group(1)
    ]
    assert job[2] == "COMPLETED"
    client = mlflow.MlflowClient(slurm_env["MLPIPE_MLFLOW_TRACKING_URI"])
    run_ = client.get_run(run_id)
    assert run_.data.tags["mlpipe.slurm.job_id"] == job[0]
    key, value = param.split("=")
    assert run_.data.params[key] == value
    assert client.get_model_version(name, "1").run_id == run_id
    assert flavor in mlflow.models.get_model_info(f"models:/{name}/1").flavors


def test_ctrl_c_cancels_the_submitted_jobs(slurm_env, slurm_cluster, tmp_path):
    tag = slurm_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    doc = {"tasks": {k: v for k, v in FAILING["tasks"].items() if k in ("load", "preprocess")}}
    doc["tasks"]["train"] = {"task": "train", "inputs": {"data": "data"}, "outputs": {"model": "m"}}
    doc["outputs"] = ["m"]
    path = pipeline_copy(tmp_path, tag, doc)
    proc = subprocess.Popen(
        [MLPIPE, "pipeline", "run", str(path), "--executor", "slurm"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLPIPE_MODEL_PLUGIN": "slurm.slow_model:SlowWeather"},
    )
    client = mlflow.MlflowClient(slurm_env["MLPIPE_MLFLOW_TRACKING_URI"])
    try:
        # ready when the slow training job runs and has started its MLflow run
        def training() -> bool:
            exp = client.get_experiment_by_name(f"pipe-{tag}")
            jobs = {j[1]: j[2] for j in jobs_named(slurm_cluster, f"mlpipe-p-{tag}-train")}
            running = exp and client.search_runs(
                [exp.experiment_id], "tags.`mlpipe.step` = 'train'"
            )
            return bool(running) and set(jobs.values()) == {"RUNNING"}

        wait_until(training, "the training job running", proc, timeout=180)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    ((job_id, _, state),) = jobs_named(slurm_cluster, f"mlpipe-p-{tag}-train")
    assert f"interrupted: cancelling Slurm job(s) {job_id}" in err
    wait_until(
        lambda: jobs_named(slurm_cluster, f"mlpipe-p-{tag}-train")[0][2].startswith("CANCELLED"),
        "sacct showing the job cancelled",
    )
    exp = client.get_experiment_by_name(f"pipe-{tag}")
    (run_,) = client.search_runs([exp.experiment_id], "tags.`mlpipe.step` = 'train'")
    assert run_.info.status == "FAILED" and run_.data.tags["mlpipe.slurm.state"] == "CANCELLED"


def test_a_broken_environment_activation_fails_with_the_log_tail(slurm_env, tmp_path):
    # no `module` command on this host: the job fails before mlpipe starts, nothing recorded
    proc = subprocess.run(
        [MLPIPE, "load-raw", str(tmp_path / "x.csv"), "--via", "slurm"],
        capture_output=True,
        text=True,
        env={**os.environ, "MLPIPE_SLURM_MODULES": "python/3.11"},
        check=False,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"step load-raw: Slurm job \d+ failed after \S+, exit code 127:0", proc.stderr)
    assert "module: command not found" in proc.stderr  # the log's last lines, in the error
    assert "it started no MLflow run" in proc.stderr


def test_slurm_errors_are_errors_not_unknown_jobs(slurm_cluster, tmp_path, monkeypatch):
    from mlpipe.slurm.cli import SlurmCli, SlurmError

    cli = SlurmCli(timeout=60)
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    assert cli.squeue(["999999"]) == {}  # squeue's "Invalid job id": it knows no such job
    assert cli.sacct(["999999"]) == {}  # sacct answered: no such job recorded
    # the same cluster with its controller and database daemon unreachable
    text = slurm_cluster.conf.read_text()
    dead = str(free_port())
    for key in ("SlurmctldPort", "AccountingStoragePort"):
        text = "\n".join(
            f"{key}={dead}" if line.startswith(f"{key}=") else line for line in text.splitlines()
        )
    conf = tmp_path / "slurm.conf"
    conf.write_text(text + "\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    with pytest.raises(SlurmError, match=r"sacct -j 1 \(exit 1\): .*onnection refused"):
        cli.sacct(["1"])
    with pytest.raises(SlurmError, match=r"squeue -j 1 \(exit 1\)"):
        cli.squeue(["1"])
    with pytest.raises(SlurmError, match=r"sbatch refused .*\(exit 1\)"):
        cli.submit(str(tmp_path / "none.sbatch"))


def test_rendered_scripts_are_accepted_or_refused_by_sbatch(slurm_cluster, tmp_path, monkeypatch):
    from mlpipe.slurm import script
    from mlpipe.slurm.cli import SlurmCli, SlurmError
    from mlpipe.slurm.resources import Resources

    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    res = Resources(
        partition=slurm_cluster.partition,
        time_limit="0-00:10:00",
        cpus=2,
        memory="500M",
        extra=("--comment=mlpipe test",),
        venv=str(Path(sys.executable).parent.parent),
    )
    files = script.JobScript("p", "r", "s", tmp_path, "python", res)
    files.path.write_text(script.render(files))
    test_only = slurm_cluster.run("sbatch", "--test-only", str(files.path))
    assert test_only.returncode == 0 and "to start at" in test_only.stderr, test_only.stderr
    # more memory than the node has: sbatch's refusal, naming the script
    big = script.JobScript("p", "r", "big", tmp_path, "python", Resources(memory="64G"))
    big.path.write_text(script.render(big))
    with pytest.raises(SlurmError, match=rf"sbatch refused {big.path} \(exit 1\): .*"):
        SlurmCli().submit(str(big.path))


def test_export_none_with_an_env_file_on_the_node(slurm_env, slurm_cluster, weather_raw, tmp_path):
    """The documented way to keep credentials out of Slurm's job records: nothing exported,
    the job reads its settings from [slurm] env_file on the node."""
    env_file = tmp_path / "credentials.env"
    settings = {k: v for k, v in slurm_env.items() if k.startswith(("MLPIPE_", "MLFLOW_"))}
    settings["MLPIPE_CONFIG"] = os.environ["MLPIPE_CONFIG"]
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    env_file.chmod(0o600)
    proc = subprocess.run(
        [MLPIPE, "load-raw", str(weather_raw / "seattle-2015.csv"), "--via", "slurm"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "MLPIPE_SLURM_SBATCH_EXTRA": "--export=NONE",
            "MLPIPE_SLURM_ENV_FILE": str(env_file),
        },
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split("load-raw: MLflow run ", 1)[1].split()[0]
    client = mlflow.MlflowClient(slurm_env["MLPIPE_MLFLOW_TRACKING_URI"])
    assert client.get_run(run_id).info.status == "FINISHED"
    (job_id,) = re.findall(r"submitted as Slurm job (\d+)", proc.stderr)

    def stored_env(job: str) -> str:
        out = slurm_cluster.run("sacct", "-j", job, "--env-vars", "-n", "-P")
        assert out.returncode == 0, out.stderr
        return out.stdout

    wait_until(lambda: "SLURM_" in stored_env(job_id), "sacct recording the job's environment")
    assert "MLPIPE_NGAS_URL" not in stored_env(job_id)
    # what sbatch stores by default (--export=ALL): the submitting environment
    plain = slurm_cluster.run(
        "sbatch", "--parsable", f"--chdir={tmp_path}", "--wrap", "true"
    ).stdout.strip()
    wait_until(lambda: "MLPIPE_NGAS_URL=" in stored_env(plain), "the default export recorded")


def test_sacct_failing_is_an_error_not_a_finished_or_unknown_job(
    slurm_env, slurm_cluster, weather_raw, monkeypatch
):
    """slurmdbd down: sacct answers errors; the step fails after unknown_grace saying so."""
    from slurm.cluster import start_slurmdbd, stop_daemon

    monkeypatch.setenv("MLPIPE_SLURM_UNKNOWN_GRACE", "5")
    stop_daemon(slurm_cluster, "slurmdbd")
    try:
        proc = subprocess.run(
            [MLPIPE, "load-raw", str(weather_raw / "seattle-2015.csv"), "--via", "slurm"],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            check=False,
            timeout=300,
        )
    finally:
        start_slurmdbd(slurm_cluster)
    assert proc.returncode == 1, proc.stderr
    (job_id,) = re.findall(r"submitted as Slurm job (\d+)", proc.stderr)
    assert f"step load-raw: Slurm job {job_id}: cannot read its state for 5s (sacct -j" in (
        proc.stderr
    )
    assert f"the job may still run: check it with sacct -j {job_id}" in proc.stderr


def _job_pids(marker: str) -> list[int]:
    """Pids of processes whose command line names ``marker`` (this test's work dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                pids.append(int(proc.name))
    return pids


def test_a_killed_slurmd_fails_the_step_within_bounded_time(slurm_env, slurm_cluster, tmp_path):
    """Last in this module: it stops the session's slurmd and starts it again."""
    from slurm.cluster import kill_slurmd, start_slurmd

    tag = slurm_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    doc = {"tasks": {k: v for k, v in FAILING["tasks"].items() if k in ("load", "preprocess")}}
    doc["tasks"]["train"] = {"task": "train", "inputs": {"data": "data"}, "outputs": {"model": "m"}}
    doc["outputs"] = ["m"]
    path = pipeline_copy(tmp_path, tag, doc)
    proc = subprocess.Popen(
        [MLPIPE, "pipeline", "run", str(path), "--executor", "slurm", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLPIPE_MODEL_PLUGIN": "slurm.slow_model:SlowWeather"},
    )
    client = mlflow.MlflowClient(slurm_env["MLPIPE_MLFLOW_TRACKING_URI"])
    work = slurm_env["MLPIPE_SLURM_WORK_DIR"]
    try:

        def training() -> bool:
            exp = client.get_experiment_by_name(f"pipe-{tag}")
            jobs = {j[2] for j in jobs_named(slurm_cluster, f"mlpipe-p-{tag}-train")}
            started = exp and client.search_runs(
                [exp.experiment_id], "tags.`mlpipe.step` = 'train'"
            )
            return bool(started) and jobs == {"RUNNING"}

        wait_until(training, "the training job running", proc, timeout=180)
        kill_slurmd(slurm_cluster)
        killed = time.monotonic()
        out, err = proc.communicate(timeout=180)
        took = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
        if not any(name == "slurmd" for name, _ in slurm_cluster.procs):
            start_slurmd(slurm_cluster)  # the node comes back (ReturnToService=2)
        # its lost job's processes die with it (slurmd kills what slurmctld no longer runs)
        wait_until(lambda: not _job_pids(work), "the lost job's processes ended", timeout=60)
    assert proc.returncode == 1, err
    assert took < 120, f"the node failure took {took:.0f}s to be reported"
    train = json.loads(out)["steps"]["train"]
    ((job_id, _, state),) = jobs_named(slurm_cluster, f"mlpipe-p-{tag}-train")
    assert state == "NODE_FAIL"
    assert f"step train: Slurm job {job_id} lost its node (NODE_FAIL)" in train["summary"]
    exp = client.get_experiment_by_name(f"pipe-{tag}")
    (run_,) = client.search_runs([exp.experiment_id], "tags.`mlpipe.step` = 'train'")
    assert run_.info.status == "FAILED" and run_.data.tags["mlpipe.slurm.state"] == "NODE_FAIL"
