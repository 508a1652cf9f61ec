"""``mlpipe pipeline run --executor local``: the shipped example end to end, skipping
unchanged steps, following the production alias, resuming after a failure, concurrency.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import mlflow
import pytest

from mlpipe.cli import main
from mlpipe.config import load_config
from mlpipe.pipeline import load_pipeline
from mlpipe.pipeline.executors import get_executor
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.runner import run_pipeline
from mlpipe.pipeline.step import StepJob, StepOutcome
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import run_task

EXAMPLE = Path(__file__).resolve().parents[2] / "tasks_py" / "examples" / "weather"
MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")
LINE = re.compile(r"^(\S+): (ran|skipped) run ([0-9a-f]{32}): ", re.MULTILINE)


def run_cli(
    path: Path, capsys: pytest.CaptureFixture[str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, tuple[str, str]]]:
    """``mlpipe pipeline run PATH``: a new process, or in this one if given ``capsys``."""
    args = ["pipeline", "run", str(path), "--executor", "local"]
    if capsys is None:
        proc = subprocess.run(
            [MLPIPE, *args], capture_output=True, text=True, env=dict(os.environ), check=False
        )
    else:
        code = main(args)
        out = capsys.readouterr()
        proc = subprocess.CompletedProcess(args, code, out.out, out.err)
    return proc, {m[0]: (m[1], m[2]) for m in LINE.findall(proc.stdout)}


def example_copy(tmp_path: Path, tag: str) -> Path:
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE / "raw", work / "raw")
    text = (EXAMPLE / "pipeline.yaml").read_text()
    text = text.replace("name: seattle-weather\n", f"name: weather-{tag}\n")
    text = text.replace("experiment: seattle-weather-pipeline", f"experiment: pipe-{tag}")
    (work / "pipeline.yaml").write_text(text)
    return work / "pipeline.yaml"


def test_example_pipeline_runs_skips_and_follows_production(
    task_env, ngas_client, tmp_path, capsys
):
    name = task_env["MLPIPE_MODEL_NAME"]
    prefix = task_env["MLPIPE_PIPELINE_DATA_PREFIX"]
    path = example_copy(tmp_path, prefix.rsplit("/", 1)[1])
    steps = set(load_pipeline(path).steps)

    proc = subprocess.run(
        [MLPIPE, "pipeline", "run", str(path), "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # exactly one JSON document: nothing else on stdout
    assert set(summary) == {"pipeline", "pipeline_run", "ok", "counts", "steps"}
    assert summary["pipeline"] == load_pipeline(path).name and summary["ok"] is True
    assert summary["counts"] == {"ran": len(steps), "skipped": 0, "failed": 0, "blocked": 0}
    assert list(summary["steps"]) == list(load_pipeline(path).steps)  # the file's order
    for step in summary["steps"].values():
        assert set(step) == {"status", "run_id", "summary", "outputs", "bad_input"}
        assert step["status"] == "ran" and step["bad_input"] is False
    assert LINE.findall(proc.stderr)  # the human lines went to stderr
    first = {s: (o["status"], o["run_id"]) for s, o in summary["steps"].items()}
    assert summary["steps"]["train"]["outputs"] == {"model": f"models:/{name}/1"}
    client = mlflow.MlflowClient(task_env["MLPIPE_MLFLOW_TRACKING_URI"])
    assert client.get_model_version_by_alias(name, "production").version == "1"
    predicted = {r.file_id for r in ngas_client.list(f"{prefix}/predictions/")}
    assert predicted == {
        f"{prefix}/predictions/{name}-v1/seattle-{year}.csv" for year in (2012, 2013, 2014, 2015)
    }
    train_run = client.get_run(first["train"][1])
    assert train_run.data.tags["mlpipe.step"] == "train" and "mlpipe.hash" in train_run.data.tags
    assert train_run.data.tags["mlpipe.pipeline_run"] == summary["pipeline_run"]

    proc, second = run_cli(path, capsys)
    assert proc.returncode == 0, proc.stderr
    assert second == {step: ("skipped", run) for step, (_, run) in first.items()}

    # a new production version flows downstream with no change to the pipeline
    ctx = TaskContext.from_config()
    latest = client.get_run(first["preprocess_new"][1])
    assert latest.info.status == "FINISHED"
    outputs = mlflow.artifacts.load_dict(f"runs:/{latest.info.run_id}/mlpipe/outputs.json")
    retrained = run_task("retrain", {"data": outputs["preprocessed"]}, {"epochs": 3}, ctx=ctx)
    assert retrained.outputs["model"] == f"models:/{name}/2"
    run_task("promote", {}, {"model": f"models:/{name}/2"}, ctx=ctx)
    proc, third = run_cli(path, capsys)
    assert proc.returncode == 0, proc.stderr
    assert {s: st for s, (st, _) in third.items()} == {
        **{s: "skipped" for s in steps},
        "infer": "ran",
        "infer_latest": "ran",
    }
    for step in ("infer", "infer_latest"):
        assert client.get_run(third[step][1]).data.tags["mlpipe.model_version"] == "2"
    assert ngas_client.exists(f"{prefix}/predictions/{name}-v2/seattle-2015.csv")


def test_resume_after_failure_from_the_failed_step(task_env, weather_raw, tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    shutil.copy(weather_raw / "seattle-2013.csv", tmp_path / "raw")
    tag = task_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    text = f"""
name: resume-{tag}
outputs: [model]
tasks:
  load: {{task: load-raw, params: {{sources: [raw/]}}, outputs: {{raw: raw}}}}
  prep: {{task: preprocess, inputs: {{raw: raw}}, outputs: {{preprocessed: rows}}}}
  train:
    task: train
    inputs: {{data: rows}}
    params: {{alpha: -1}}
    outputs: {{model: model}}
"""
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    proc, first = run_cli(path, capsys)
    assert proc.returncode == 2
    assert "train: failed: parameter alpha=-1: must be between 0 and 1000.0" in proc.stderr
    assert {s: st for s, (st, _) in first.items()} == {"load": "ran", "prep": "ran"}
    code = main(["pipeline", "run", str(path), "--json"])
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert code == 2 and summary["ok"] is False
    assert summary["counts"] == {"ran": 0, "skipped": 2, "failed": 1, "blocked": 0}
    train = summary["steps"]["train"]
    assert (train["status"], train["bad_input"], train["run_id"]) == ("failed", True, "")
    assert "alpha=-1" in train["summary"]
    client = mlflow.MlflowClient(task_env["MLPIPE_MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(f"pipeline-resume-{tag}")
    failed = client.search_runs([exp.experiment_id], "attributes.status = 'FAILED'")
    assert [r.data.tags["mlpipe.step"] for r in failed] == ["train", "train"]

    path.write_text(text.replace("alpha: -1", "alpha: 0.001"))
    outcomes = run_pipeline(path, TaskContext.from_config()).outcomes
    assert {s: (o.status, o.run_id) for s, o in outcomes.items() if s != "train"} == {
        s: ("skipped", run) for s, (_, run) in first.items()
    }
    assert outcomes["train"].status == "ran"
    assert outcomes["train"].outputs == {"model": f"models:/{task_env['MLPIPE_MODEL_NAME']}/1"}


def _plan(tmp_path: Path) -> Plan:
    (tmp_path / "pipeline.yaml").write_text(
        """
name: concurrency
outputs: [a, b, c]
tasks:
  one: {task: load-raw, params: {sources: [x]}, outputs: {raw: a}}
  two: {task: load-raw, params: {sources: [y]}, outputs: {raw: b}}
  broken: {task: load-raw, params: {sources: [z]}, outputs: {raw: z}}
  after: {task: preprocess, inputs: {raw: z}, outputs: {preprocessed: c}}
"""
    )
    return Plan(load_pipeline(tmp_path / "pipeline.yaml"), pipeline_run="test")


def test_local_executor_runs_independent_steps_concurrently(tmp_path):
    barrier = threading.Barrier(3, timeout=30)  # one, two and broken must overlap
    seen: list[StepJob] = []

    def run_job(job: StepJob) -> StepOutcome:
        seen.append(job)
        barrier.wait()  # raises BrokenBarrierError unless all three run at once
        if job.step == "broken":
            raise RuntimeError("disk full")
        return StepOutcome(job.step, "ran", outputs={"raw": [{"id": job.step}]})

    class Steps:  # the executor under test is real; the step runner is the test's
        run = staticmethod(run_job)

    executor = get_executor("local", load_config(env={}), max_workers=3)
    outcomes = executor.run(_plan(tmp_path), Steps())  # type: ignore[arg-type]
    assert {s: o.status for s, o in outcomes.items()} == {
        "one": "ran",
        "two": "ran",
        "broken": "failed",
        "after": "blocked",
    }
    assert outcomes["broken"].summary == "RuntimeError: disk full"
    assert {j.step for j in seen} == {"one", "two", "broken"}
    assert all(j.params["base_dir"] == str(tmp_path) for j in seen)


def test_job_inputs_come_from_upstream_outputs(tmp_path):
    plan = _plan(tmp_path)
    done = {"broken": StepOutcome("broken", "skipped", "r1", {"raw": [{"id": "z1"}]})}
    assert plan.ready(done, set()) == ["one", "two", "after"]
    job = plan.job("after", done)
    assert job.inputs == {"raw": [{"id": "z1"}]} and job.task == "preprocess"
    assert StepJob.from_json(job.to_json()) == job


def test_json_with_a_bad_pipeline_file_is_exit_2_and_no_json(tmp_path, capsys):
    path = tmp_path / "pipeline.yaml"
    path.write_text("name: broken\ntasks:\n  a: {task: no-such-task}\n")
    assert main(["pipeline", "run", str(path), "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert f"{path}: the pipeline is invalid" in out.err
    assert "unknown task 'no-such-task'" in out.err


def test_step_main_bad_job_file_is_bad_input(tmp_path, capsys):
    from mlpipe.pipeline.step import main as step_main

    job = tmp_path / "job.json"
    job.write_text('{"pipeline": "p", "step": "s"}')
    assert step_main([str(job)]) == 2
    assert f"step {job}: {job}: not a step job; expected the keys" in capsys.readouterr().err
    assert step_main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read the job file" in capsys.readouterr().err
