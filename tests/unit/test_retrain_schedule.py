"""Scheduled retraining (issue 15 item 2): ``retrain --new-only`` takes only the files the
parent version's lineage did not use, and the promotion gate promotes a better challenger
and refuses a worse one, recording why on the challenger's version and training run.

Against a real MLflow (artifacts proxied to NGAS) and the NGAS double; the retraining
pipeline is the shipped example ``tasks_py/examples/weather-retrain/pipeline.yaml`` with
the test's data prefix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from http_faults import FaultyProxy
from mlpipe.cli import main
from mlpipe.pipeline import load_pipeline
from mlpipe.pipeline.validate import validate
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import get_spec, run_task

EXAMPLE = Path(__file__).resolve().parents[2] / "tasks_py" / "examples" / "weather-retrain"
MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")
# no retries, short timeouts: a failure is reported in seconds, not minutes
FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
WHY = re.compile(
    r"^(promoted|refused): rmse ([0-9.]+) (better than|worse than|as good as) ([0-9.]+) "
    r"of champion version (\d+) on (\d+) rows$"
)


def preprocessed(ctx: TaskContext, weather_raw: Path, *years: int) -> list[dict[str, object]]:
    raw = run_task(
        "load-raw", {}, {"sources": [str(weather_raw / f"seattle-{y}.csv") for y in years]}, ctx=ctx
    )
    return run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": 2}, ctx=ctx).outputs[
        "preprocessed"
    ]


def champion(ctx: TaskContext, weather_raw: Path, name: str, **train: object) -> None:
    """Version 1 trained on 2012-2013 and promoted to production."""
    run_task("train", {"data": preprocessed(ctx, weather_raw, 2012, 2013)}, train, ctx=ctx)
    run_task("promote", {}, {"model": f"models:/{name}/1"}, ctx=ctx)


def retrain_pipeline(tmp_path: Path, task_env: dict[str, str], **extra: object) -> Path:
    """The shipped retraining pipeline on the test's prefix, ``extra`` retrain parameters."""
    tag = task_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[-1]
    text = (EXAMPLE / "pipeline.yaml").read_text()
    for old, new in (
        ("name: seattle-weather-retrain\n", f"name: retrain-{tag}\n"),
        ("experiment: seattle-weather-retrain\n", f"experiment: retrain-{tag}\n"),
        (
            "[mlpipe/weather/preprocessed/]",
            f"[{task_env['MLPIPE_PIPELINE_DATA_PREFIX']}/preprocessed/]",
        ),
        (
            "      epochs: 20\n",
            "      epochs: 20\n"
            + "".join(f"      {k}: {json.dumps(v)}\n" for k, v in extra.items()),
        ),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "retrain.yaml"
    path.write_text(text)
    return path


def run_json(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    capsys.readouterr()  # what the set-up printed
    code = main(["pipeline", "run", str(path), "--executor", "local", "--json"])
    out = capsys.readouterr()
    return code, json.loads(out.out)


def production(client: mlflow.MlflowClient, name: str) -> str:
    return str(client.get_model_version_by_alias(name, "production").version)


def versions(client: mlflow.MlflowClient, name: str) -> list[str]:
    return sorted(v.version for v in client.search_model_versions(f"name='{name}'"))


def test_the_example_validates_and_retrain_needs_data_or_prefixes(tmp_path):
    example = load_pipeline(EXAMPLE / "pipeline.yaml")
    assert validate(example, TaskContext.from_config().plugin).errors == []
    assert get_spec("retrain").ngas_params == ("data_prefixes",)
    bare = tmp_path / "bare.yaml"
    bare.write_text("name: bare\ntasks:\n  r: {task: retrain, params: {new_only: true}}\n")
    (error,) = validate(load_pipeline(bare), None).errors
    assert error == "step r (retrain): needs input 'data' (or parameter 'data_prefixes')"


def test_a_worse_challenger_is_not_promoted_and_the_reason_is_recorded(
    task_env, weather_raw, tmp_path, capsys
):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    client = mlflow.MlflowClient()
    champion(ctx, weather_raw, name)
    preprocessed(ctx, weather_raw, 2014)  # arrives after version 1
    # alpha 50: continued training shrinks the weights, a clearly worse challenger
    code, report = run_json(retrain_pipeline(tmp_path, task_env, alpha=50), capsys)
    assert code == 0, report
    assert report["steps"]["retrain"]["status"] == "ran"
    assert report["steps"]["retrain"]["outputs"] == {"model": f"models:/{name}/2"}
    assert production(client, name) == "1"  # the champion stays

    mv2 = client.get_model_version(name, "2")
    why = mv2.tags["mlpipe.promotion"]
    m = WHY.match(why)
    assert m and m[1] == "refused" and m[3] == "worse than" and m[5] == "1", why
    training = client.get_run(mv2.run_id)
    assert training.data.tags["mlpipe.promotion"] == why
    promote_run = client.get_run(report["steps"]["promote"]["run_id"])
    assert promote_run.data.tags["mlpipe.verdict"] == "refused"
    assert mv2.tags["mlpipe.promotion_run"] == promote_run.info.run_id
    assert training.data.tags["mlpipe.promotion_run"] == promote_run.info.run_id
    # the figures are the gate's own: both models on the challenger's held-out rows
    metrics = promote_run.data.metrics
    assert float(m[2]) == pytest.approx(metrics["challenger_rmse"], rel=1e-3)
    assert float(m[4]) == pytest.approx(metrics["champion_rmse"], rel=1e-3)
    assert metrics["challenger_rmse"] > metrics["champion_rmse"]
    assert int(m[6]) == int(training.data.metrics["rows_heldout"]) > 0
    # only the new file was used: 2014, not the champion's 2012-2013
    data = mlflow.artifacts.load_dict(f"runs:/{mv2.run_id}/data.json")
    assert [f["id"].rsplit("/", 1)[-1] for f in data["data"]] == ["seattle-2014.csv"]
    assert "mlpipe.promoted_from" not in mv2.tags

    # the next scheduled run: nothing changed (production, files), nothing runs again
    code, again = run_json(retrain_pipeline(tmp_path, task_env, alpha=50), capsys)
    assert code == 0 and again["counts"] == {"ran": 0, "skipped": 2, "failed": 0, "blocked": 0}
    assert versions(client, name) == ["1", "2"] and production(client, name) == "1"


def test_a_better_challenger_is_promoted_with_the_figures_and_then_nothing_is_new(
    task_env, weather_raw, tmp_path, capsys
):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    client = mlflow.MlflowClient()
    champion(ctx, weather_raw, name, alpha=50)  # a poor champion
    preprocessed(ctx, weather_raw, 2014)
    path = retrain_pipeline(tmp_path, task_env, alpha=0.0001)
    code, report = run_json(path, capsys)
    assert code == 0, report
    assert production(client, name) == "2"
    mv2 = client.get_model_version(name, "2")
    why = mv2.tags["mlpipe.promotion"]
    m = WHY.match(why)
    assert m and m[1] == "promoted" and m[3] == "better than" and m[5] == "1", why
    assert float(m[2]) < float(m[4])
    assert client.get_run(mv2.run_id).data.tags["mlpipe.promotion"] == why
    assert mv2.tags["mlpipe.promoted_from"] == "1"
    promote_run = client.get_run(report["steps"]["promote"]["run_id"])
    assert promote_run.data.tags["mlpipe.verdict"] == "promoted"
    assert float(m[2]) == pytest.approx(promote_run.data.metrics["challenger_rmse"], rel=1e-3)

    # next run: production moved, so retrain runs again, from version 2: its lineage
    # (2014, and version 1's 2012-2013) used every file: nothing registered, nothing promoted
    code, second = run_json(path, capsys)
    assert code == 0, second
    steps = second["steps"]
    assert steps["retrain"]["status"] == "ran" and steps["retrain"]["outputs"] == {"model": None}
    assert steps["retrain"]["summary"].startswith(f"nothing new since {name} version 2")
    assert steps["promote"]["status"] == "ran" and steps["promote"]["outputs"] == {"model": None}
    assert client.get_run(steps["promote"]["run_id"]).data.tags["mlpipe.verdict"] == "nothing"
    assert versions(client, name) == ["1", "2"] and production(client, name) == "2"
    assert client.get_model_version(name, "2").tags["mlpipe.promotion"] == why  # kept

    # a file arrives: the listing changed, so retrain runs; only that file is new
    preprocessed(ctx, weather_raw, 2015)
    code, third = run_json(path, capsys)
    assert code == 0, third
    assert third["steps"]["retrain"]["outputs"] == {"model": f"models:/{name}/3"}
    mv3 = client.get_model_version(name, "3")
    data = mlflow.artifacts.load_dict(f"runs:/{mv3.run_id}/data.json")
    assert [f["id"].rsplit("/", 1)[-1] for f in data["data"]] == ["seattle-2015.csv"]
    assert data["parent"] == f"models:/{name}/2"
    assert WHY.match(mv3.tags["mlpipe.promotion"])
    assert (
        client.get_run(mv3.run_id)
        .data.tags["mlpipe.selection"]
        .startswith("new since version 2: 1 of 4 file(s)")
    )


def test_new_only_takes_unseen_files_and_nothing_new_is_exit_0(
    task_env, weather_raw, ngas_client, tmp_path, capsys
):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    prefix = task_env["MLPIPE_PIPELINE_DATA_PREFIX"]
    client = mlflow.MlflowClient()
    champion(ctx, weather_raw, name)
    (new,) = preprocessed(ctx, weather_raw, 2014)

    def cli(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["retrain", f"{prefix}/preprocessed/", "--new-only", "-p", "epochs=3", *args])
        out = capsys.readouterr()
        return code, out.out + out.err

    code, out = cli()
    assert code == 0, out
    assert "new since version 1: 1 of 3 file(s)" in out
    mv2 = client.get_model_version(name, "2")
    assert mv2.tags["mlpipe.data_ids"] == f"{new['id']}#{new['version']}"

    # from version 2 (lineage 2 -> 1): every file was used
    code, out = cli("--model", f"models:/{name}/2")
    assert code == 0, out
    assert f"nothing new since {name} version 2: its lineage used all 3 file(s)" in out
    assert versions(client, name) == ["1", "2"]
    (run,) = client.search_runs(
        [ctx.experiment_id()], "tags.`mlpipe.outcome` = 'nothing new'", max_results=5
    )
    assert run.data.tags["mlpipe.parent_version"] == "2"

    # the same bytes archived again (a new NGAS version) are not new data...
    local = tmp_path / "same.csv"
    ngas_client.retrieve(new["id"], local)
    assert ngas_client.archive(local, new["id"]).version == new["version"] + 1
    code, out = cli("--model", f"models:/{name}/2")
    assert code == 0 and "nothing new since" in out, out
    # ... changed bytes under the same id are
    frame = local.read_text().splitlines()
    local.write_text("\n".join(frame[:-1]) + "\n")
    ngas_client.archive(local, new["id"])
    code, out = cli("--model", f"models:/{name}/2")
    assert code == 0 and "new since version 2: 1 of 3 file(s)" in out, out
    assert versions(client, name) == ["1", "2", "3"]
    assert production(client, name) == "1"  # retrain alone promotes nothing


def mlpipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLPIPE, *args], capture_output=True, text=True, env=env, check=False, timeout=300
    )


@pytest.mark.parametrize(
    ("failing", "said"),
    [
        (("GET", r"/model-versions/get"), "reading version 1 of {name}: the MLflow server at"),
        (
            ("GET", r"/mlflow-artifacts/artifacts/.*data\.json"),
            "cannot read data.json of run {run}",
        ),
    ],
    ids=["version", "data.json"],
)
def test_mlflow_5xx_during_the_selection_is_an_error_not_nothing_new(
    task_env, weather_raw, failing, said
):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    prefix = task_env["MLPIPE_PIPELINE_DATA_PREFIX"]
    client = mlflow.MlflowClient()
    champion(ctx, weather_raw, name)
    preprocessed(ctx, weather_raw, 2014)
    with FaultyProxy(task_env["MLPIPE_MLFLOW_TRACKING_URI"]) as proxy:
        proxy.fail = failing
        env = {**os.environ, **FAST, "MLPIPE_MLFLOW_TRACKING_URI": proxy.url}
        proc = mlpipe("retrain", f"{prefix}/preprocessed/", "--new-only", env=env)
    assert proc.returncode == 1, proc.stderr
    assert proxy.failed >= 1
    run = client.get_model_version(name, "1").run_id
    assert said.format(name=name, run=run) in proc.stderr
    assert "nothing new" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert versions(client, name) == ["1"]


def test_ngas_failure_during_the_selection_is_an_error_not_nothing_new(
    task_env, weather_raw, ngas_faults, tmp_path, capsys
):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    client = mlflow.MlflowClient()
    champion(ctx, weather_raw, name)
    preprocessed(ctx, weather_raw, 2014)
    path = retrain_pipeline(tmp_path, task_env)
    ngas_faults.faults.fail_5xx = 1000  # every request, retries included
    code, report = run_json(path, capsys)
    ngas_faults.faults.clear()
    assert code == 1, report
    retrain = report["steps"]["retrain"]
    assert retrain["status"] == "failed" and not retrain["bad_input"]
    assert "nothing new" not in retrain["summary"]
    assert report["steps"]["promote"]["status"] == "blocked"
    assert versions(client, name) == ["1"] and production(client, name) == "1"
    # NGAS back: the same run goes ahead
    code, report = run_json(path, capsys)
    assert code == 0, report
    assert report["steps"]["retrain"]["outputs"] == {"model": f"models:/{name}/2"}


@pytest.mark.parametrize(
    "failing",
    [
        ("GET", r"/mlflow-artifacts/artifacts\?path=.*eval"),  # the listing
        ("GET", r"/mlflow-artifacts/artifacts/.*heldout\.csv"),  # the file
    ],
    ids=["listing", "download"],
)
def test_mlflow_5xx_reading_the_heldout_rows_is_an_error_not_a_missing_file(
    task_env, weather_raw, failing
):
    """The gate reads the challenger's held-out rows; a 5xx there fails the promotion
    (exit 1, naming what it read), never "the run has no held-out rows" (exit 2)."""
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    client = mlflow.MlflowClient()
    champion(ctx, weather_raw, name)
    run_task("train", {"data": preprocessed(ctx, weather_raw, 2014)}, {}, ctx=ctx)
    challenger_run = client.get_model_version(name, "2").run_id
    with FaultyProxy(task_env["MLPIPE_MLFLOW_TRACKING_URI"]) as proxy:
        proxy.fail = failing
        env = {**os.environ, **FAST, "MLPIPE_MLFLOW_TRACKING_URI": proxy.url}
        proc = mlpipe("promote", name, "2", "--if-better", "rmse", env=env)
    assert proxy.failed >= 1
    assert proc.returncode == 1, proc.stderr
    assert f"reading the held-out rows of run {challenger_run}" in proc.stderr, proc.stderr
    assert "has no eval/heldout.csv" not in proc.stderr and "Traceback" not in proc.stderr
    assert production(client, name) == "1"
