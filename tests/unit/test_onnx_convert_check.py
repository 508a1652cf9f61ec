"""``convert`` and ``check`` (issue 17 item 3): a registered version exported to ONNX, stored
on NGAS through MLflow and tagged on the version, then compared with the original under
onnxruntime on its held-out rows.

Real MLflow (artifacts proxied to the NGAS double, or real NGAS with ``NGAS_SOURCE``),
the real tasks, the weather example trained on the committed 2012 data (preprocessed
once per module).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import onnxruntime
import pandas as pd
import pytest

from mlpipe.cli import main
from mlpipe.config import load_config
from mlpipe.errors import BadInput
from mlpipe.models.onnx import OnnxUnsupported
from mlpipe.models.weather import WeatherModel
from mlpipe.pipeline import load_pipeline, validate
from mlpipe.pipeline.runner import run_pipeline
from mlpipe.storage import NgasClient
from mlpipe.tasks import check, convert
from mlpipe.tasks.check import OnnxMismatch
from mlpipe.tasks.cli import task_main
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import run_task

PYTHON = str(Path(os.path.abspath(sys.executable)))
SKEWED = 1  # the coefficient a wrong converter moves (temp_max, after scaling)
DELTA = 0.05


class SkewedConverter(WeatherModel):
    """A faulty converter: exports a copy of the model with one coefficient moved by DELTA."""

    def to_onnx(self, model: Any, sample: pd.DataFrame) -> bytes:
        wrong = copy.deepcopy(model)
        wrong.named_steps["reg"].coef_[SKEWED] += DELTA
        return super().to_onnx(wrong, sample)


class NoOnnxModel:
    """A model plugin without ONNX support: the weather model's methods, no to_onnx."""

    name = "no-onnx"
    metric_goals = WeatherModel.metric_goals
    preprocess_settings = WeatherModel.preprocess_settings
    train_params = WeatherModel.train_params
    continue_params = WeatherModel.continue_params

    def __init__(self) -> None:
        self._weather = WeatherModel()
        for method in (
            "validate_raw",
            "preprocess",
            "split",
            "train",
            "continue_training",
            "predict",
            "evaluate",
            "log_model",
            "load_model",
        ):
            setattr(self, method, getattr(self._weather, method))


@pytest.fixture(scope="module")
def features(ngas_server, mlflow_server_ngas_proxied, weather_raw) -> Iterator[list[dict]]:
    """The 2012 observations loaded and preprocessed once (lags 1): a preprocessed file set."""
    tag = uuid.uuid4().hex[:8]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "MLPIPE_NGAS_URL": ngas_server.url,
            "MLPIPE_MLFLOW_TRACKING_URI": mlflow_server_ngas_proxied.url,
            "MLPIPE_PIPELINE_DATA_PREFIX": f"t/onnx-{tag}",
            "MLPIPE_PIPELINE_EXPERIMENT": f"onnx-data-{tag}",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }.items():
            mp.setenv(key, value)
        ctx = TaskContext.from_config()
        sources = [str(weather_raw / "seattle-2012.csv")]
        raw = run_task("load-raw", {}, {"sources": sources}, ctx=ctx)
        pre = run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": 1}, ctx=ctx)
        yield pre.outputs["preprocessed"]


def train(ctx: TaskContext, files: list[dict], alpha: float = 1e-4) -> str:
    """A new version of the test's model (the real train task); its models:/ URI."""
    return str(run_task("train", {"data": files}, {"alpha": alpha}, ctx=ctx).outputs["model"])


def heldout(client: mlflow.MlflowClient, uri: str, tmp_path: Path) -> pd.DataFrame:
    name, version = uri.removeprefix("models:/").split("/")
    run_id = client.get_model_version(name, version).run_id
    dest = tmp_path / f"heldout-{version}"
    return pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="eval/heldout.csv", dst_path=str(dest)
        )
    )


def onnx_predict(data: bytes, rows: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": rows})[0]).ravel()


def test_convert_stores_the_onnx_model_on_ngas_and_tags_the_version(
    task_env, features, ngas_server, tmp_path, capsys
):
    ctx = TaskContext.from_config()
    client = mlflow.MlflowClient()
    uri = train(ctx, features)
    name = task_env["MLPIPE_MODEL_NAME"]
    assert uri == f"models:/{name}/1"

    code = main(["convert", f"{name}/1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"convert: {name} version 1: ONNX model (" in out
    tags = client.get_model_version(name, "1").tags
    run_id = tags["mlpipe.onnx_run"]
    run = client.get_run(run_id)
    assert run.data.tags["mlpipe.task"] == "convert"
    assert run.data.tags["mlpipe.model_version"] == "1"
    assert tags["mlpipe.onnx"] == f"{run.info.artifact_uri}/onnx/model.onnx"
    assert tags["mlpipe.onnx_check"] == f"not checked ({run_id})"
    outputs = mlflow.artifacts.load_dict(f"runs:/{run_id}/mlpipe/outputs.json")
    assert outputs == {"model": uri, "onnx": tags["mlpipe.onnx"]}

    # the bytes are in NGAS (under the run's path-like id), and the artifact URI reads them
    ngas = NgasClient(ngas_server.url)
    ids = [f.file_id for f in ngas.list("") if run_id in f.file_id]
    assert [i for i in ids if i.endswith("/onnx/model.onnx")], ids
    (file_id,) = [i for i in ids if i.endswith("/onnx/model.onnx")]
    stored = tmp_path / "stored.onnx"
    ngas.retrieve(file_id, stored)
    via_uri = mlflow.artifacts.download_artifacts(
        artifact_uri=tags["mlpipe.onnx"], dst_path=str(tmp_path / "via-uri")
    )
    assert Path(via_uri).read_bytes() == stored.read_bytes()
    assert run.data.metrics["onnx_bytes"] == stored.stat().st_size

    # ... and it is the version's model: the same predictions as the sklearn original
    rows = heldout(client, uri, tmp_path)
    plugin = WeatherModel()
    x = rows[plugin.feature_columns(rows)]
    original = mlflow.sklearn.load_model(uri).predict(x)
    got = onnx_predict(stored.read_bytes(), x.to_numpy(dtype=np.float64))
    assert got == pytest.approx(original, rel=1e-9, abs=1e-9)


def test_check_passes_on_the_real_pair(task_env, features, tmp_path, capsys):
    ctx = TaskContext.from_config()
    client = mlflow.MlflowClient()
    uri = train(ctx, features)
    name = task_env["MLPIPE_MODEL_NAME"]
    converted = run_task("convert", {}, {"model": uri}, ctx=ctx)
    client.set_registered_model_alias(name, "production", "1")

    # as a script on a node (python -m mlpipe.tasks.check: task_main), by alias
    assert task_main(check.SPEC, [f"{name}@production"]) == 0
    out = capsys.readouterr().out
    assert f"check: {name} version 1: ONNX model passed: max |difference|" in out
    tags = client.get_model_version(name, "1").tags
    rows = len(heldout(client, uri, tmp_path))
    assert tags["mlpipe.onnx_check"].startswith("passed: max |difference| ")
    assert tags["mlpipe.onnx_check"].endswith(f" on {rows} rows (rtol 1e-05, atol 1e-05)")
    assert float(tags["mlpipe.onnx_max_abs_diff"]) < 1e-9
    run = client.get_run(tags["mlpipe.onnx_check_run"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlpipe.verdict"] == "passed"
    assert run.data.tags["mlpipe.onnx"] == converted.outputs["onnx"]
    assert run.data.metrics["rows"] == rows and run.data.metrics["rows_beyond"] == 0
    assert run.data.params["rtol"] == "1e-05"

    # the one CLI, with the tolerance options; a version never converted is bad input
    assert main(["check", f"{name}/1", "--rtol", "0", "--atol", "1e-9"]) == 0
    assert "(rtol 0, atol 1e-09)" in client.get_model_version(name, "1").tags["mlpipe.onnx_check"]
    train(ctx, features)
    capsys.readouterr()
    assert main(["check", f"{name}/2"]) == 2
    err = capsys.readouterr().err
    assert "the version has no ONNX model" in err and f"mlpipe convert {name}/2" in err
    with pytest.raises(BadInput, match=r"check: atol=-1: must be 0 or more"):
        run_task("check", {}, {"model": uri, "atol": -1}, ctx=ctx)


def test_check_fails_on_a_wrong_onnx_model_naming_the_worst_row(task_env, features, tmp_path):
    ctx = TaskContext.from_config()
    client = mlflow.MlflowClient()
    uri = train(ctx, features)
    name = task_env["MLPIPE_MODEL_NAME"]
    faulty = TaskContext(load_config(), _plugin=SkewedConverter())
    run_task("convert", {}, {"model": uri}, ctx=faulty)

    # what the skewed coefficient does, worked out from the model itself
    rows = heldout(client, uri, tmp_path)
    model = mlflow.sklearn.load_model(uri)
    x = rows[WeatherModel().feature_columns(rows)]
    scaled = model.named_steps["scale"].transform(x)[:, SKEWED]
    diff = DELTA * np.abs(scaled)
    original = model.predict(x)
    beyond = int(np.sum(diff > 1e-5 + 1e-5 * np.abs(original)))
    worst = int(np.argmax(diff - (1e-5 + 1e-5 * np.abs(original))))
    assert 0 < beyond <= len(rows)

    with pytest.raises(OnnxMismatch) as caught:
        run_task("check", {}, {"model": uri}, ctx=ctx)
    message = str(caught.value)
    assert f"differs from the original on {beyond} of {len(rows)} evaluation rows" in message
    assert f"beyond rtol 1e-05, atol 1e-05; worst row {worst} (date={rows['date'][worst]})" in (
        message
    )
    assert f"original {original[worst]:.6g}, ONNX " in message
    assert f"|difference| {diff[worst]:.3g} > allowed" in message
    tags = client.get_model_version(name, "1").tags
    assert tags["mlpipe.onnx_check"].startswith(f"failed: {beyond} of {len(rows)} rows differ")
    assert float(tags["mlpipe.onnx_max_abs_diff"]) == pytest.approx(diff.max(), rel=1e-5)
    run = client.get_run(tags["mlpipe.onnx_check_run"])
    assert run.info.status == "FAILED"  # a pipeline runs the check again
    assert run.data.tags["mlpipe.verdict"] == "failed"
    assert run.data.metrics["rows_beyond"] == beyond

    # within a tolerance that covers the skew it passes; the CLI's failure is exit 1
    loose = f"{diff.max() * 1.01:.6g}"
    passed = run_task("check", {}, {"model": uri, "atol": float(loose)}, ctx=ctx)
    assert passed.details == {"verdict": "passed"}
    assert main(["check", uri]) == 1


@pytest.mark.parametrize("task", [convert, check])
def test_each_task_runs_as_a_script(task):
    """``python -m mlpipe.tasks.<task>`` (its --help only: the run is task_main's, above)."""
    proc = subprocess.run(
        [PYTHON, "-m", task.__name__, "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m {task.__name__} [-h]")
    assert "NAME@ALIAS, NAME/VERSION" in proc.stdout


def test_a_plugin_without_conversion_and_a_missing_extra_are_clear_errors(
    task_env, features, monkeypatch, capsys
):
    ctx = TaskContext.from_config()
    uri = train(ctx, features)
    monkeypatch.setenv("MLPIPE_MODEL_PLUGIN", f"{__name__}:NoOnnxModel")
    for task in ("convert", "check"):
        assert main([task, uri]) == 2
        err = capsys.readouterr().err
        assert (
            f"mlpipe {task}: {task}: the model plugin no-onnx ({__name__}:NoOnnxModel) cannot "
            "export its models to ONNX: it has no to_onnx, onnx_inputs, predict_values method"
        ) in err
    plain = TaskContext(load_config(), _plugin=NoOnnxModel())  # type: ignore[arg-type]
    with pytest.raises(OnnxUnsupported, match=r"give it to_onnx\(model, sample\)"):
        run_task("convert", {}, {"model": uri}, ctx=plain)

    monkeypatch.delenv("MLPIPE_MODEL_PLUGIN")
    monkeypatch.setitem(sys.modules, "onnx", None)  # the [onnx] extra not installed
    assert main(["convert", uri]) == 2
    err = capsys.readouterr().err
    assert "convert needs the [onnx] extra (onnx is missing): pip install 'mlpipe[onnx]'" in err
    tags = mlflow.MlflowClient().get_model_version(task_env["MLPIPE_MODEL_NAME"], "1").tags
    assert "mlpipe.onnx" not in tags  # nothing was stored


def test_pipeline_with_convert_and_check_steps(task_env, weather_raw, tmp_path):
    (tmp_path / "raw").mkdir()
    shutil.copy(weather_raw / "seattle-2012.csv", tmp_path / "raw")
    tag = task_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    name = task_env["MLPIPE_MODEL_NAME"]
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"""
name: onnx-{tag}
outputs: [checked]
tasks:
  load: {{task: load-raw, params: {{sources: [raw/]}}, outputs: {{raw: raw}}}}
  prep:
    task: preprocess
    inputs: {{raw: raw}}
    params: {{lags: 1}}
    outputs: {{preprocessed: rows}}
  train: {{task: train, inputs: {{data: rows}}, outputs: {{model: trained}}}}
  convert:
    task: convert
    inputs: {{model: trained}}
    outputs: {{model: converted, onnx: onnx}}
  check:
    task: check
    inputs: {{model: converted, onnx: onnx}}
    params: {{rtol: 1.0e-6, atol: 1.0e-6}}
    outputs: {{model: checked}}
"""
    )
    report = validate(load_pipeline(path), WeatherModel())
    assert report.errors == [] and report.warnings == []
    ctx = TaskContext.from_config()
    first = run_pipeline(path, ctx, executor="local").outcomes
    assert {s: o.status for s, o in first.items()} == dict.fromkeys(
        ("load", "prep", "train", "convert", "check"), "ran"
    )
    client = mlflow.MlflowClient()
    tags = client.get_model_version(name, "1").tags
    assert first["convert"].outputs == {"model": f"models:/{name}/1", "onnx": tags["mlpipe.onnx"]}
    assert first["check"].outputs == {"model": f"models:/{name}/1"}
    assert tags["mlpipe.onnx_check_run"] == first["check"].run_id
    assert tags["mlpipe.onnx_check"].startswith("passed: ")
    assert tags["mlpipe.onnx_check"].endswith("(rtol 1e-06, atol 1e-06)")

    again = run_pipeline(path, ctx, executor="local").outcomes
    assert {s: (o.status, o.run_id) for s, o in again.items()} == {
        s: ("skipped", o.run_id) for s, o in first.items()
    }


class Float32Weather(WeatherModel):
    onnx_input_type = "float"


def test_float32_conversion_is_within_the_default_tolerance(weather_raw):
    """The plugin's float32 export (no MLflow): lossy, but inside rtol/atol 1e-5."""
    from mlpipe.tasks.check import OWN_PARAMS, compare

    plugin = Float32Weather()
    frame = plugin.preprocess(weather_raw / "seattle-2012.csv", {"lags": 1})
    rows, held = plugin.split(frame, 0.2)
    model = plugin.train(rows, {})
    feeds = plugin.onnx_inputs(held)
    assert feeds["input"].dtype == np.float32
    got = onnx_predict(plugin.to_onnx(model, held), feeds["input"])
    result = compare(
        plugin.predict_values(model, held), got, OWN_PARAMS["rtol"], OWN_PARAMS["atol"]
    )
    assert result.ok and result.rows == len(held)
    assert 0 < result.max_abs < 1e-4  # float32: not exact
    assert not compare(plugin.predict_values(model, held), got, 0, 1e-9).ok


def test_shipped_onnx_pipeline_follows_the_production_alias(task_env, features):
    """tasks_py/examples/weather-onnx as shipped (the local cluster's weather-onnx): no model
    input, so both steps take [model] name@production; a run with the alias unmoved skips
    them, a run after it moved converts and checks the new version."""
    example = Path(__file__).resolve().parents[2] / "tasks_py/examples/weather-onnx/pipeline.yaml"
    ctx = TaskContext.from_config()
    client = mlflow.MlflowClient()
    name = task_env["MLPIPE_MODEL_NAME"]
    train(ctx, features)
    train(ctx, features, alpha=1e-2)
    client.set_registered_model_alias(name, "production", "1")

    first = run_pipeline(example, ctx, executor="local").outcomes
    assert {s: o.status for s, o in first.items()} == {"convert": "ran", "check": "ran"}
    assert client.get_model_version(name, "1").tags["mlpipe.onnx_check"].startswith("passed: ")
    assert "mlpipe.onnx" not in client.get_model_version(name, "2").tags

    same = run_pipeline(example, ctx, executor="local").outcomes
    assert {s: o.status for s, o in same.items()} == {"convert": "skipped", "check": "skipped"}

    client.set_registered_model_alias(name, "production", "2")
    moved = run_pipeline(example, ctx, executor="local").outcomes
    assert {s: o.status for s, o in moved.items()} == {"convert": "ran", "check": "ran"}
    assert moved["check"].outputs == {"model": f"models:/{name}/2"}
    assert client.get_model_version(name, "2").tags["mlpipe.onnx_check"].startswith("passed: ")
