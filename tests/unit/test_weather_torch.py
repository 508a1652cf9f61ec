"""The PyTorch example model plugin (weather-torch): found by name, deterministic with a seed,
trained, logged (pytorch flavour, pt2), loaded (plugin and pyfunc), used for inference and
retrained from the registered weights through the tasks, against a real MLflow server whose
artifacts go to the NGAS double.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch

from mlpipe.errors import BadInput
from mlpipe.models import load_plugin
from mlpipe.models.weather_torch import LOSS_METRIC, METADATA_KEY, WeatherNet, WeatherTorchModel
from mlpipe.tasks import frames
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import run_task


def rows(weather_raw: Path, *years: int, lags: int = 2) -> pd.DataFrame:
    plugin = WeatherTorchModel()
    return pd.concat(
        [plugin.preprocess(weather_raw / f"seattle-{y}.csv", {"lags": lags}) for y in years],
        ignore_index=True,
    )


def x_of(frame: pd.DataFrame, info: mlflow.models.model.ModelInfo) -> np.ndarray:
    """The float32 feature columns of ``frame`` in the logged model's order."""
    return frame[info.metadata[METADATA_KEY]["features"]].to_numpy(dtype=np.float32)


def same_weights(a: WeatherNet, b: WeatherNet) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_found_by_entry_point_name_and_dotted_path():
    assert isinstance(load_plugin("weather-torch"), WeatherTorchModel)
    assert isinstance(
        load_plugin("mlpipe.models.weather_torch:WeatherTorchModel"), WeatherTorchModel
    )


def test_same_seed_same_weights_and_predictions_another_seed_not(weather_raw):
    plugin = WeatherTorchModel()
    train, heldout = plugin.split(rows(weather_raw, 2012, 2013), 0.2)
    params = {"epochs": 5}
    rng_before = torch.get_rng_state()
    threads = torch.get_num_threads()
    first = plugin.train(train, params)
    # the process's own torch settings are left as they were
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()

    torch.manual_seed(12345)  # the global RNG's state does not matter
    second = plugin.train(train, params)
    assert same_weights(first, second)
    assert np.array_equal(first.predict(heldout), second.predict(heldout))
    assert first.loss_history == second.loss_history

    other = plugin.train(train, {**params, "seed": 1})
    assert not same_weights(first, other)
    assert not np.array_equal(first.predict(heldout), other.predict(heldout))


def test_continue_training_starts_from_the_given_weights(weather_raw):
    plugin = WeatherTorchModel()
    parent = plugin.train(rows(weather_raw, 2012), {"epochs": 20})
    new = rows(weather_raw, 2013)
    child = plugin.continue_training(parent, new, {"epochs": 3})
    # step 0 (before any update) is the parent's loss on the new rows: its weights, its scales
    assert child.loss_history[0] == plugin.training_loss(parent, new)
    scratch = plugin.train(new, {"epochs": 1})
    assert scratch.loss_history[0] > 3 * child.loss_history[0]  # an untrained net is far off
    assert torch.equal(child.x_mean, parent.x_mean) and torch.equal(child.y_std, parent.y_std)
    assert not same_weights(child, parent)  # it trained (a copy: the parent is unchanged)
    assert child.loss_history[-1] < child.loss_history[0]

    with pytest.raises(BadInput, match="preprocess with the same settings"):
        plugin.continue_training(parent, rows(weather_raw, 2013, lags=1), {})
    with pytest.raises(BadInput, match="parameter lr=0: must be between"):
        plugin.continue_training(parent, new, {"lr": 0})


def test_train_log_load_infer_retrain_through_the_tasks(
    task_env, weather_raw, ngas_client, monkeypatch, tmp_path
):
    monkeypatch.setenv("MLPIPE_MODEL_PLUGIN", "weather-torch")
    ctx = TaskContext.from_config()
    plugin = ctx.plugin
    assert isinstance(plugin, WeatherTorchModel)
    name = task_env["MLPIPE_MODEL_NAME"]
    client = mlflow.MlflowClient()

    def preprocessed(*years: int) -> list[dict]:
        sources = [str(weather_raw / f"seattle-{y}.csv") for y in years]
        raw = run_task("load-raw", {}, {"sources": sources}, ctx=ctx)
        pre = run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": 2}, ctx=ctx)
        return pre.outputs["preprocessed"]

    # --- train: version 1, logged with the pytorch flavour (pt2) and as pyfunc
    history = preprocessed(2012, 2013)
    train = run_task("train", {"data": history}, {"epochs": 30}, ctx=ctx)
    assert train.outputs == {"model": f"models:/{name}/1"}
    trun = client.get_run(train.run_id)
    train_rows, heldout = plugin.split(frames.load(ctx, history, "data"), 0.2)
    assert trun.data.metrics["rmse"] < heldout["target"].std() / 2  # it learned something
    losses = [m.value for m in client.get_metric_history(train.run_id, LOSS_METRIC)]
    assert len(losses) == 31 and losses[-1] < losses[0] / 2
    info = mlflow.models.get_model_info(f"models:/{name}/1")
    assert {"pytorch", "python_function"} <= set(info.flavors)
    assert info.metadata[METADATA_KEY]["features"] == plugin.feature_columns(train_rows)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path)))
    assert (local / "data" / "model.pt2").is_file()  # torch.export's format, no pickle
    assert not (local / "data" / "model.pth").exists()

    # the registered weights are exactly the ones training gives here, from the same rows
    v1 = plugin.load_model(f"models:/{name}/1")
    assert same_weights(v1, plugin.train(train_rows, {"epochs": 30}))
    assert plugin.evaluate(v1, heldout)["rmse"] == pytest.approx(trun.data.metrics["rmse"])
    # pyfunc: a float32 array of the feature columns, no mlpipe needed
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/1")
    x = heldout[info.metadata[METADATA_KEY]["features"]].to_numpy(dtype=np.float32)
    got = np.asarray(pyfunc.predict(x), dtype=float).ravel()
    assert got.tolist() == pytest.approx(v1.predict(heldout).tolist(), abs=1e-4)

    # --- infer with version 1 in production
    latest = preprocessed(2015)
    run_task("promote", {}, {"model": f"models:/{name}/1"}, ctx=ctx)
    infer = run_task("infer", {"data": latest}, ctx=ctx)
    (pred,) = infer.outputs["predictions"]
    frame_2015 = plugin.preprocess(weather_raw / "seattle-2015.csv", {"lags": 2})
    dest = tmp_path / "pred.csv"
    ngas_client.retrieve(pred["id"], dest)
    assert dest.read_bytes() == plugin.predict(v1, frame_2015).to_csv(index=False).encode()

    # --- convert production to ONNX (torch.onnx) and check it against the original
    converted = run_task("convert", {}, {"model": f"{name}@production"}, ctx=ctx)
    onnx_file = tmp_path / "model.onnx"
    mlflow.artifacts.download_artifacts(converted.outputs["onnx"], dst_path=str(tmp_path))
    session = onnxruntime.InferenceSession(
        onnx_file.read_bytes(), providers=["CPUExecutionProvider"]
    )
    for some in (frame_2015.head(1), frame_2015):  # any number of rows
        (out,) = session.run(None, {"input": x_of(some, info)})
        assert out.shape == (len(some),)
        assert out.tolist() == pytest.approx(v1.predict(some).tolist(), rel=1e-5, abs=1e-5)
    run_task("check", {}, {"model": f"{name}@production"}, ctx=ctx)
    tags = client.get_model_version(name, "1").tags
    assert tags["mlpipe.onnx_check"].startswith("passed: max |difference| "), tags
    assert float(tags["mlpipe.onnx_max_abs_diff"]) < 1e-4  # float32 both sides: close

    # --- retrain production on 2014: version 2 continues from version 1's weights
    more = preprocessed(2014)
    retrain = run_task("retrain", {"data": more}, {"epochs": 5}, ctx=ctx)
    assert retrain.outputs == {"model": f"models:/{name}/2"}
    rrun = client.get_run(retrain.run_id)
    assert rrun.data.tags["mlpipe.parent_version"] == "1"
    new_rows, new_heldout = plugin.split(frames.load(ctx, more, "data"), 0.2)
    steps = [m.value for m in client.get_metric_history(retrain.run_id, LOSS_METRIC)]
    assert len(steps) == 6
    assert steps[0] == pytest.approx(plugin.training_loss(v1, new_rows), rel=1e-6)
    assert steps[0] < plugin.train(new_rows, {"epochs": 1}).loss_history[0] / 3
    v2 = plugin.load_model(f"models:/{name}/2")
    assert same_weights(v2, plugin.continue_training(v1, new_rows, {"epochs": 5}))
    assert rrun.data.metrics["parent_rmse"] == pytest.approx(
        plugin.evaluate(v1, new_heldout)["rmse"]
    )
    assert not np.array_equal(v2.predict(frame_2015), v1.predict(frame_2015))
