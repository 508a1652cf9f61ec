"""The results site (``mlpipe web serve``) against real MLflow and NGAS, with data made by
the real tasks: the example pipeline, then a retrain (version 2, parent version 1).

The site runs as its own process (uvicorn) exactly as the webserver role starts it; the
tests speak HTTP to it. The attacker probes (``mlpipe.web.probes``) run against it here
and against nginx + the app in the end-to-end test.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
from PIL import Image

from mlpipe.web import probes

TESTS = Path(__file__).resolve().parents[1]
EXAMPLE = TESTS.parent / "tasks_py" / "examples" / "weather"
MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")
sys.path.insert(0, str(TESTS))
from procs import free_port, start_web_site, stop_process  # noqa: E402


@dataclass
class Site:
    url: str
    model: str
    experiment: str
    prefix: str
    env: dict[str, str]
    log: Path

    def get(self, path: str, **kw: object) -> requests.Response:
        return requests.get(self.url + path, timeout=60, **kw)  # type: ignore[arg-type]


def _start_site(env: dict[str, str], work: Path, *args: str) -> tuple[subprocess.Popen, str, Path]:
    return start_web_site(MLPIPE, env, work, *args)


@pytest.fixture(scope="module")
def site(ngas_server, mlflow_server_ngas_proxied, tmp_path_factory) -> Iterator[Site]:
    tag = uuid.uuid4().hex[:10]
    work = tmp_path_factory.mktemp("web")
    prefix = f"t/{tag}"
    env = {
        **os.environ,
        "MLPIPE_NGAS_URL": ngas_server.url,
        "MLPIPE_NGAS_RETRIES": "2",
        "MLPIPE_NGAS_BACKOFF": "0.05",
        "MLPIPE_MLFLOW_TRACKING_URI": mlflow_server_ngas_proxied.url,
        "MLPIPE_PIPELINE_DATA_PREFIX": prefix,
        "MLPIPE_PIPELINE_EXPERIMENT": f"exp-{tag}",
        "MLPIPE_MODEL_NAME": f"weather-{tag}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    shutil.copytree(EXAMPLE / "raw", work / "raw")
    text = (EXAMPLE / "pipeline.yaml").read_text()
    text = text.replace("name: seattle-weather\n", f"name: weather-{tag}\n")
    text = text.replace("experiment: seattle-weather-pipeline", f"experiment: pipe-{tag}")
    (work / "pipeline.yaml").write_text(text)
    run = subprocess.run(
        [MLPIPE, "pipeline", "run", str(work / "pipeline.yaml"), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outputs = json.loads(run.stdout)["steps"]["preprocess_new"]["outputs"]["preprocessed"]
    new_data = [item["id"] for item in outputs]
    retrain = subprocess.run(
        [MLPIPE, "retrain", *new_data, "-p", "epochs=3", "--experiment", f"pipe-{tag}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert retrain.returncode == 0, retrain.stderr[-3000:]
    proc, url, log = _start_site(
        env, work, "--experiment", f"pipe-{tag}", "--model", f"weather-{tag}"
    )
    try:
        yield Site(url, f"weather-{tag}", f"pipe-{tag}", prefix, env, log)
    finally:
        stop_process(proc)


def _production_outputs(site: Site) -> list[dict[str, object]]:
    files = site.get("/api/outputs").json()
    assert files, "no published output"
    return files


# ----------------------------------------------------------------- models
def test_models_page_lists_the_production_model_with_its_metrics(site: Site) -> None:
    client = mlflow.MlflowClient(site.env["MLPIPE_MLFLOW_TRACKING_URI"])
    production = client.get_model_version_by_alias(site.model, "production")
    metrics = client.get_run(production.run_id).data.metrics

    listed = site.get("/api/models").json()
    assert [m["name"] for m in listed] == [site.model]
    entry = listed[0]
    assert entry["aliases"] == {"production": production.version}
    assert entry["alias_version"] == production.version == "1"
    assert entry["versions"] == 2 and entry["latest_version"] == "2"
    assert entry["metrics"]["rmse"] == pytest.approx(metrics["rmse"])

    html = site.get("/models")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert site.model in html.text and f"{metrics['rmse']:.4g}" in html.text
    same = site.get("/models", headers={"Accept": "application/json"})
    assert same.headers["content-type"] == "application/json" and same.json() == listed


def test_model_page_shows_versions_lineage_and_plots(site: Site) -> None:
    model = site.get(f"/api/models/{site.model}").json()
    v2, v1 = model["versions"]
    assert (v1["version"], v1["aliases"], v1["parent_version"]) == ("1", ["production"], "")
    assert (v2["version"], v2["aliases"], v2["parent_version"]) == ("2", [], "1")
    assert v1["data_ids"] and all(
        d.startswith(f"{site.prefix}/preprocessed/") for d in v1["data_ids"]
    )
    assert any("seattle-2015" in d for d in v2["data_ids"])
    assert {"rmse", "mae", "r2"} <= set(model["metrics"])
    assert f"/plots/models/{site.model}/rmse.png" in model["plots"]
    page = site.get(f"/models/{site.model}").text
    assert f'<img src="/plots/models/{site.model}/rmse.png"' in page


def test_metric_plot_is_a_decodable_png_and_svg(site: Site) -> None:
    png = site.get(f"/plots/models/{site.model}/rmse.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    image.load()
    assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100
    svg = site.get(f"/plots/models/{site.model}/rmse.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert ET.fromstring(svg.content).tag.endswith("svg")
    assert site.get(f"/plots/models/{site.model}/no_such_metric.png").status_code == 404
    assert site.get(f"/plots/models/{site.model}/rmse.gif").status_code == 404


# ------------------------------------------------------------------- runs
def test_runs_and_run_pages_with_params_metrics_and_predicted_vs_actual(site: Site) -> None:
    runs = site.get("/api/runs").json()
    steps = {r["step"] for r in runs}
    assert {"load", "preprocess", "train", "promote", "infer", "infer_latest"} <= steps
    assert all(r["experiment"] == site.experiment for r in runs)
    train = next(r for r in runs if r["step"] == "train")
    detail = site.get(f"/api/runs/{train['run_id']}").json()
    assert detail["params"]["alpha"] == "0.0001" and "rmse" in detail["metrics"]
    assert detail["tags"]["mlpipe.model_name"] == site.model and detail["outputs"] == []

    infer = next(r for r in runs if r["step"] == "infer_latest")
    detail = site.get(f"/api/runs/{infer['run_id']}").json()
    assert [f["name"] for f in detail["outputs"]] == ["seattle-2015.csv"]
    assert detail["plots"] == [f"/plots/runs/{infer['run_id']}/predicted.png"]
    png = site.get(detail["plots"][0])
    assert png.status_code == 200
    Image.open(io.BytesIO(png.content)).load()
    page = site.get(f"/runs/{infer['run_id']}").text
    assert "seattle-2015.csv" in page and "predicted.png" in page


# ---------------------------------------------------------------- outputs
def test_outputs_list_the_inference_files_and_downloads_equal_ngas(site, ngas_client) -> None:
    files = _production_outputs(site)
    expected = {
        f"{site.prefix}/predictions/{site.model}-v1/seattle-{y}.csv"
        for y in (2012, 2013, 2014, 2015)
    }
    assert {f["file_id"] for f in files} == expected
    for f in files:
        got = site.get(f["download"])
        assert got.status_code == 200
        stored = ngas_client.info(f["file_id"], f["version"])
        assert int(got.headers["content-length"]) == stored.size == len(got.content)
        assert got.headers["x-mlpipe-file-version"] == str(stored.version)
        assert "attachment" in got.headers["content-disposition"]
        dest = Path(site.log.parent, "ngas-copy.csv")
        ngas_client.retrieve(f["file_id"], dest, version=f["version"])
        assert got.content == dest.read_bytes()
    page = site.get("/outputs").text
    assert all(f'href="/files/{f}"' in page for f in expected)


def test_range_requests(site: Site) -> None:
    f = _production_outputs(site)[0]
    whole = site.get(f["download"]).content
    part = site.get(f["download"], headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == whole[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(whole)}"
    assert part.headers["content-length"] == "90"
    tail = site.get(f["download"], headers={"Range": "bytes=-20"})
    assert tail.status_code == 206 and tail.content == whole[-20:]
    beyond = site.get(f["download"], headers={"Range": f"bytes={len(whole) + 5}-"})
    assert beyond.status_code == 416
    head = requests.head(site.url + f["download"], timeout=30)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(whole))
    assert head.content == b""


def test_security_headers_and_json_errors(site: Site) -> None:
    page = site.get("/models")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "server" not in {k.lower() for k in page.headers}
    missing = site.get("/api/runs/" + "0" * 32)
    assert missing.status_code == 404 and missing.json() == {"error": "not found", "status": 404}


def test_attacker_probes_are_refused_by_the_app(site: Site, capsys) -> None:
    published = _production_outputs(site)[0]["file_id"]
    raw = f"{site.prefix}/raw/seattle-2012.csv"
    preprocessed = f"{site.prefix}/preprocessed/seattle-2012.csv"
    results = probes.run(site.url, str(published), [raw, preprocessed])
    with capsys.disabled():
        print("\n" + probes.report(results))
    assert len(results) == len(probes.probes(str(published), [raw, preprocessed])) >= 60
    served = [f"{r.probe.name}: {r.detail}" for r in results if not r.refused]
    assert not served, served
    # the probes did not change anything: the published file is still served, unchanged
    assert site.get(f"/files/{published}").status_code == 200


def test_mlflow_failures_are_502_never_404(site: Site, tmp_path: Path) -> None:
    """MLflow unreachable -> the pages answer 502 (never "not found"), health still 200."""
    env = {
        **site.env,
        "MLPIPE_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",  # nothing listens
    }
    proc, url, log = _start_site(
        env, tmp_path, "--experiment", site.experiment, "--model", site.model
    )
    try:
        for path in ("/api/models", "/api/runs", "/api/outputs", f"/files/{site.prefix}/x.csv"):
            got = requests.get(url + path, timeout=120)
            assert got.status_code == 502, (path, got.status_code, got.text[:200])
            assert "127.0.0.1" not in got.text  # no internal address in the public answer
        assert requests.get(url + "/healthz", timeout=10).status_code == 200
    finally:
        stop_process(proc)
    assert "unreachable" in log.read_text()


def test_serve_refuses_bad_settings(site: Site) -> None:
    bad = subprocess.run(
        [MLPIPE, "web", "serve", "--experiment", "../x"],
        env=site.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 2 and "--experiment '../x'" in bad.stderr
    none = subprocess.run(
        [MLPIPE, "web", "serve"],
        env={k: v for k, v in site.env.items() if k != "MLPIPE_WEB_EXPERIMENTS"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert none.returncode == 2 and "--experiment NAME" in none.stderr
