"""The whole chain against a real MLflow (artifacts proxied to NGAS) and the NGAS double:
load -> preprocess -> train -> infer -> retrain -> promote (gate) -> infer with the new version.
"""

from __future__ import annotations

import io
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
import pytest

from mlpipe.errors import BadInput
from mlpipe.models.weather import WeatherModel
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.promote import GateRefused
from mlpipe.tasks.registry import run_task


def ngas_bytes(client, file_id: str, tmp_path: Path) -> bytes:
    dest = tmp_path / "got" / file_id.replace("/", "_")
    client.retrieve(file_id, dest)
    return dest.read_bytes()


def load_and_preprocess(ctx, sources, lags=2):
    raw = run_task("load-raw", {}, {"sources": [str(s) for s in sources]}, ctx=ctx)
    pre = run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": lags}, ctx=ctx)
    return raw, pre


def test_whole_chain(task_env, weather_raw, ngas_client, tmp_path):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    prefix = task_env["MLPIPE_PIPELINE_DATA_PREFIX"]
    client = mlflow.MlflowClient()
    plugin = WeatherModel()

    # --- load-raw: two good files and a corrupt one (quarantined, the rest loaded)
    corrupt = tmp_path / "seattle-corrupt.csv"
    corrupt.write_bytes(b"\x00\xff\xfe garbage\nnot;a;weather;file\n")
    history = [weather_raw / "seattle-2012.csv", weather_raw / "seattle-2013.csv"]
    raw = run_task("load-raw", {}, {"sources": [*map(str, history), str(corrupt)]}, ctx=ctx)
    ids = [f["id"] for f in raw.outputs["raw"]]
    assert ids == [f"{prefix}/raw/seattle-2012.csv", f"{prefix}/raw/seattle-2013.csv"]
    for path, file_id in zip(history, ids, strict=True):
        assert ngas_bytes(ngas_client, file_id, tmp_path) == path.read_bytes()
    quarantined = [r.file_id for r in ngas_client.list(f"{prefix}/quarantine/")]
    assert quarantined == [f"{prefix}/quarantine/raw/seattle-corrupt.csv"]
    assert not ngas_client.exists(f"{prefix}/raw/seattle-corrupt.csv")
    run = client.get_run(raw.run_id)
    assert run.data.metrics["files"] == 2 and run.data.metrics["quarantined"] == 1
    listing = mlflow.artifacts.load_dict(f"runs:/{raw.run_id}/raw_files.json")
    assert [q["id"] for q in listing["quarantined"]] == quarantined
    assert "seattle-corrupt.csv" in listing["quarantined"][0]["reason"]
    assert {s["size"] for s in listing["stored"]} == {p.stat().st_size for p in history}

    # --- preprocess: bytes on NGAS are the plugin's output for those raw files
    pre = run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": 2}, ctx=ctx)
    assert client.get_run(pre.run_id).data.params["lags"] == "2"
    for path, item in zip(history, pre.outputs["preprocessed"], strict=True):
        assert item["id"] == f"{prefix}/preprocessed/{path.stem}.csv"
        expected = plugin.preprocess(path, {"lags": 2}).to_csv(index=False).encode()
        assert ngas_bytes(ngas_client, item["id"], tmp_path) == expected

    # --- train: version 1, real held-out metrics, data lineage
    train = run_task("train", {"data": pre.outputs["preprocessed"]}, {"alpha": 1e-4}, ctx=ctx)
    assert train.outputs == {"model": f"models:/{name}/1"}
    trun = client.get_run(train.run_id)
    heldout = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=train.run_id, artifact_path="eval/heldout.csv", dst_path=str(tmp_path / "h")
        )
    )
    v1 = mlflow.sklearn.load_model(f"models:/{name}/1")
    recomputed = plugin.evaluate(v1, heldout)
    assert trun.data.metrics["rmse"] == pytest.approx(recomputed["rmse"], rel=1e-9)
    assert trun.data.metrics["rmse"] < heldout["target"].std() / 2  # it learned something
    assert int(trun.data.metrics["rows_heldout"]) == len(heldout)
    mv1 = client.get_model_version(name, "1")
    assert mv1.run_id == train.run_id
    assert mv1.tags["mlpipe.data_ids"].startswith(f"{prefix}/preprocessed/seattle-2012.csv#")

    # --- infer before anything is promoted: a clear error naming what exists
    _, new = load_and_preprocess(ctx, [weather_raw / "seattle-2015.csv"])
    with pytest.raises(BadInput, match=r"alias 'production' is not set .*versions 1; aliases none"):
        run_task("infer", {"data": new.outputs["preprocessed"]}, ctx=ctx)
    with pytest.raises(BadInput, match=rf"no registered model 'nope'.*registered: .*{name}"):
        run_task("infer", {"data": new.outputs["preprocessed"], "model": "nope"}, ctx=ctx)

    run_task("promote", {}, {"model": f"models:/{name}/1"}, ctx=ctx)
    infer1 = run_task("infer", {"data": new.outputs["preprocessed"]}, ctx=ctx)
    assert client.get_run(infer1.run_id).data.tags["mlpipe.model_version"] == "1"
    (pred1,) = infer1.outputs["predictions"]
    assert pred1["id"] == f"{prefix}/predictions/{name}-v1/seattle-2015.csv"
    frame_2015 = plugin.preprocess(weather_raw / "seattle-2015.csv", {"lags": 2})
    expected = plugin.predict(v1, frame_2015).to_csv(index=False).encode()
    assert ngas_bytes(ngas_client, pred1["id"], tmp_path) == expected

    # --- retrain the production model on new data: version 2 with its lineage
    _, more = load_and_preprocess(ctx, [weather_raw / "seattle-2014.csv"])
    retrain = run_task("retrain", {"data": more.outputs["preprocessed"]}, {"epochs": 5}, ctx=ctx)
    assert retrain.outputs == {"model": f"models:/{name}/2"}
    rrun = client.get_run(retrain.run_id)
    assert rrun.data.tags["mlpipe.parent_version"] == "1"
    assert rrun.data.tags["mlpipe.parent_requested"] == f"models:/{name}@production"
    assert "seattle-2014.csv" in rrun.data.tags["mlpipe.data_ids"]
    assert {"rmse", "parent_rmse"} <= set(rrun.data.metrics)
    mv2 = client.get_model_version(name, "2")
    assert mv2.tags["mlpipe.parent_version"] == "1" and mv2.run_id == retrain.run_id
    assert mv2.tags["mlpipe.data_ids"].startswith(f"{prefix}/preprocessed/seattle-2014.csv#")

    # --- the gate: a clearly worse challenger is refused, production stays
    run_task("promote", {}, {"model": f"models:/{name}/2"}, ctx=ctx)
    bad = run_task("train", {"data": more.outputs["preprocessed"]}, {"alpha": 50}, ctx=ctx)
    assert bad.outputs == {"model": f"models:/{name}/3"}
    with pytest.raises(GateRefused, match=r"refused .* version 3: rmse .* worse than .* version 2"):
        run_task("promote", {}, {"model": f"models:/{name}/3", "if_better": "rmse"}, ctx=ctx)
    assert client.get_model_version_by_alias(name, "production").version == "2"
    refusal = client.search_runs(
        [ctx.experiment_id()], "tags.`mlpipe.verdict` = 'refused'", max_results=5
    )
    (refused,) = refusal
    assert refused.data.metrics["challenger_rmse"] > refused.data.metrics["champion_rmse"]

    # ... and a better challenger passes it (same evaluation data for both)
    run_task("promote", {}, {"model": f"models:/{name}/3"}, ctx=ctx)  # worse one is champion
    eval_ids = [f["id"] for f in more.outputs["preprocessed"]]
    passed = run_task(
        "promote",
        {},
        {"model": f"models:/{name}/2", "if_better": "rmse", "eval_data": eval_ids},
        ctx=ctx,
    )
    assert passed.details["verdict"] == "promoted"
    prun = client.get_run(passed.run_id)
    assert prun.data.metrics["challenger_rmse"] < prun.data.metrics["champion_rmse"]
    assert client.get_model_version_by_alias(name, "production").version == "2"
    assert client.get_model_version(name, "2").tags["mlpipe.promoted_from"] == "3"

    # --- inference picks up the new production version with no config change
    infer2 = run_task("infer", {"data": new.outputs["preprocessed"]}, ctx=ctx)
    assert client.get_run(infer2.run_id).data.tags["mlpipe.model_version"] == "2"
    (pred2,) = infer2.outputs["predictions"]
    assert pred2["id"] == f"{prefix}/predictions/{name}-v2/seattle-2015.csv"
    v2 = mlflow.sklearn.load_model(f"models:/{name}/2")
    got = pd.read_csv(io.BytesIO(ngas_bytes(ngas_client, pred2["id"], tmp_path)))
    assert got["predicted_next_temp_max"].tolist() == pytest.approx(
        v2.predict(frame_2015[plugin.feature_columns(frame_2015)]).round(4).tolist()
    )
    assert ngas_bytes(ngas_client, pred1["id"], tmp_path) == expected  # v1's output kept


def test_preprocess_quarantines_bad_files_and_keeps_the_batch(
    task_env, weather_raw, ngas_client, tmp_path
):
    ctx = TaskContext.from_config()
    prefix = task_env["MLPIPE_PIPELINE_DATA_PREFIX"]
    broken = tmp_path / "broken.csv"
    broken.write_text("when,rain\n2020-01-01,3\n")
    good = ngas_client.archive(weather_raw / "seattle-2015.csv", f"{prefix}/in/seattle-2015.csv")
    bad = ngas_client.archive(broken, f"{prefix}/in/broken.csv")
    raw = [
        {"id": i.file_id, "version": i.version, "checksum": i.checksum, "size": i.size}
        for i in (good, bad)
    ]
    result = run_task("preprocess", {"raw": raw}, {}, ctx=ctx)
    assert [f["id"] for f in result.outputs["preprocessed"]] == [
        f"{prefix}/preprocessed/seattle-2015.csv"
    ]
    (q,) = result.details["quarantined"]
    assert q["raw"] == bad.file_id and "missing column(s) date" in q["reason"]
    assert ngas_bytes(ngas_client, q["id"], tmp_path) == broken.read_bytes()
    assert ngas_client.exists(bad.file_id)  # nothing stored is lost
    with pytest.raises(BadInput, match="none of the 1 raw file"):
        run_task("preprocess", {"raw": raw[1:]}, {}, ctx=ctx)
    with pytest.raises(BadInput, match="input raw: the set of files is empty"):
        run_task("preprocess", {"raw": []}, {}, ctx=ctx)
