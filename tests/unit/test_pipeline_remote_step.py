"""The remote-step form executors ship to nodes: ``python -m mlpipe.pipeline.step JOB
OUTCOME --upstream ...`` with jobs from ``Plan.template``, run as separate processes
against real MLflow and NGAS, the outcome file written also on failure, and the
controller-side ``unchanged`` check.
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

from mlpipe.errors import BadInput
from mlpipe.pipeline import load_pipeline
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.step import StepJob, StepOutcome, unchanged
from mlpipe.tasks.context import TaskContext

EXAMPLE = Path(__file__).resolve().parents[2] / "tasks_py" / "examples" / "weather"

PIPELINE = """\
name: {name}
experiment: {experiment}
tasks:
  load:
    task: load-raw
    params: {{sources: ["raw/seattle-2012.csv", "raw/seattle-2013.csv"]}}
    outputs: {{raw: raw}}
  preprocess:
    task: preprocess
    inputs: {{raw: raw}}
    params: {{lags: {lags}}}
    outputs: {{preprocessed: data}}
  train:
    task: train
    inputs: {{data: data}}
    params: {{alpha: 0.0001, test_fraction: 0.2}}
    outputs: {{model: model}}
"""


def _pipeline(tmp_path: Path, tag: str, lags: int = 2) -> Plan:
    work = tmp_path / "pipe"
    if not (work / "raw").exists():
        shutil.copytree(EXAMPLE / "raw", work / "raw")
    text = PIPELINE.format(name=f"remote-{tag}", experiment=f"remote-{tag}", lags=lags)
    (work / "pipeline.yaml").write_text(text)
    return Plan(load_pipeline(work / "pipeline.yaml"), pipeline_run=f"pr-{tag}")


def _step(
    job: StepJob, work: Path, upstream: list[Path]
) -> tuple[subprocess.CompletedProcess[str], StepOutcome]:
    """Run ``job`` the way a remote executor does: a new process, files in, file out."""
    job_file, out_file = work / f"{job.step}.job.json", work / f"{job.step}.outcome.json"
    job_file.write_text(job.to_json())
    args = [sys.executable, "-m", "mlpipe.pipeline.step", str(job_file), str(out_file)]
    for path in upstream:
        args += ["--upstream", str(path)]
    proc = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ), check=False)
    return proc, StepOutcome.from_json(out_file.read_text(), str(out_file))


def _run_all(plan: Plan, work: Path, tags: dict[str, str]) -> dict[str, StepOutcome]:
    work.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, StepOutcome] = {}
    for name in plan.order:
        job = plan.template(name)
        job = StepJob(**{**json.loads(job.to_json()), "tags": tags})
        upstream = [work / f"{d}.outcome.json" for d in sorted(plan.deps[name])]
        proc, outcomes[name] = _step(job, work, upstream)
        assert proc.returncode == 0, proc.stderr
    return outcomes


def test_template_jobs_run_as_processes_from_upstream_outcome_files(task_env, tmp_path):
    plan = _pipeline(tmp_path, "a")
    assert plan.order == ["load", "preprocess", "train"]
    template = plan.template("train")
    assert template.inputs == {}
    assert template.inputs_from == {"data": ["preprocess", "preprocessed"]}

    tags = {"mlpipe.executor": "test-remote", "mlpipe.test.session": "s-1"}
    first = _run_all(plan, tmp_path / "w1", tags)
    assert [o.status for o in first.values()] == ["ran", "ran", "ran"]
    ctx = TaskContext.from_config()
    ctx.setup_mlflow()
    # the preprocess step consumed what load recorded, train what preprocess recorded
    pre = mlflow.MlflowClient().get_run(first["preprocess"].run_id)
    assert pre.data.tags["mlpipe.executor"] == "test-remote"
    assert pre.data.tags["mlpipe.test.session"] == "s-1"
    assert pre.data.tags["mlpipe.pipeline_run"] == "pr-a"
    assert first["train"].outputs["model"]
    ids = {f["id"] for f in first["load"].outputs["raw"]}
    assert ids and all(isinstance(i, str) for i in ids)

    # unchanged on the controller: every step of the same plan is skippable now ...
    done: dict[str, StepOutcome] = {}
    for name in plan.order:
        skipped = unchanged(plan.job(name, done), ctx)
        assert skipped is not None and skipped.status == "skipped"
        assert skipped.run_id == first[name].run_id
        done[name] = skipped
    # ... and a second run on the nodes skips all, with the same outputs
    second = _run_all(plan, tmp_path / "w2", tags)
    assert [o.status for o in second.values()] == ["skipped"] * 3
    assert second["train"].outputs == first["train"].outputs

    # a changed parameter: load is still unchanged, preprocess is not
    changed = _pipeline(tmp_path, "a", lags=3)
    assert unchanged(changed.job("load", {}), ctx) is not None
    assert unchanged(changed.job("preprocess", {"load": done["load"]}), ctx) is None


def test_a_failed_producer_writes_a_failed_outcome_and_exit_2(tmp_path, capsys):
    plan = _pipeline(tmp_path, "b")
    from mlpipe.pipeline.step import main as step_main

    up = tmp_path / "load.outcome.json"
    up.write_text(StepOutcome("load", "failed", summary="disk full").to_json())
    job = tmp_path / "job.json"
    job.write_text(plan.template("preprocess").to_json())
    out = tmp_path / "out.json"
    assert step_main([str(job), str(out), "--upstream", str(up)]) == 2
    outcome = StepOutcome.from_json(out.read_text())
    assert outcome.status == "failed" and outcome.bad_input and outcome.step == "preprocess"
    assert "comes from step load, which failed: disk full" in outcome.summary
    assert outcome.summary in capsys.readouterr().err

    # no --upstream at all: the same kind of outcome, naming the missing producer
    assert step_main([str(job), str(out)]) == 2
    assert (
        "no outcome of load was given (--upstream)"
        in StepOutcome.from_json(out.read_text()).summary
    )


def test_a_task_failure_on_the_node_is_exit_1_with_the_error_in_the_outcome(task_env, tmp_path):
    plan = _pipeline(tmp_path, "c")
    (tmp_path / "w").mkdir()
    # load's recorded output names an NGAS file that does not exist
    bogus = StepOutcome("load", "ran", "r0", {"raw": [{"id": "mlpipe/nowhere/x.csv"}]})
    up = tmp_path / "w" / "load.outcome.json"
    up.write_text(bogus.to_json())
    proc, outcome = _step(plan.template("preprocess"), tmp_path / "w", [up])
    assert proc.returncode in (1, 2), proc.stderr
    assert outcome.status == "failed" and outcome.step == "preprocess"
    assert "mlpipe/nowhere/x.csv" in outcome.summary
    assert outcome.summary in proc.stderr


def test_resolve_names_a_missing_output_slot_and_outcome_files_are_checked(tmp_path):
    plan = _pipeline(tmp_path, "d")
    job = plan.template("preprocess")
    with pytest.raises(BadInput, match="step load recorded no output 'raw' \\(it has: other\\)"):
        job.resolve({"load": StepOutcome("load", "ran", outputs={"other": []})})
    resolved = job.resolve({"load": StepOutcome("load", "skipped", outputs={"raw": [1]})})
    assert resolved.inputs == {"raw": [1]} and resolved.inputs_from == {}
    assert StepJob.from_json(resolved.to_json()) == resolved
    with pytest.raises(BadInput, match="x.json: status 'done' is not one of ran, skipped"):
        StepOutcome.from_json('{"step": "s", "status": "done"}', "x.json")
    with pytest.raises(BadInput, match="y.json: not a step outcome file"):
        StepOutcome.from_json('{"step": "s"}', "y.json")
