"""``mlpipe compare`` and the results site's comparison page (issue 17 item 5), against a
real MLflow (artifacts proxied to NGAS) with versions made by the real tasks: version 1
trained on 2012-2013 and promoted, version 2 retrained from it on 2014 with another
alpha. Both training runs get plot artifacts afterwards (as a plugin logging figures
would leave them); version 2 has one plot more.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from http_faults import FaultyProxy
from mlpipe.cli import main
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import run_task

MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")
FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from procs import start_web_site, stop_process  # noqa: E402

SHARED = "plots/residuals.png"
ONLY_V2 = "plots/extra/importance.svg"


@dataclass
class Trained:
    name: str
    env: dict[str, str]
    client: mlflow.MlflowClient
    runs: dict[str, str]  # version -> training run id
    plots: dict[tuple[str, str], bytes]  # (version, artifact path) -> bytes logged
    data: dict[str, list[str]]  # version -> id#version of its own data.json
    experiment: str


def _figure(title: str, fmt: str) -> bytes:
    fig = Figure(figsize=(3, 2))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([1, 2, 3], [3, 1, len(title)])
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()


def _log(client: mlflow.MlflowClient, run_id: str, path: str, body: bytes, tmp: Path) -> None:
    local = tmp / uuid.uuid4().hex / Path(path).name
    local.parent.mkdir(parents=True)
    local.write_bytes(body)
    client.log_artifact(run_id, str(local), str(Path(path).parent))


def _keys(run_id: str) -> list[str]:
    doc = mlflow.artifacts.load_dict(f"runs:/{run_id}/data.json")
    return [f"{f['id']}#{f['version']}" for f in doc["data"]]


@pytest.fixture(scope="module")
def trained(
    ngas_server, mlflow_server_ngas_proxied, weather_raw, tmp_path_factory
) -> Iterator[Trained]:
    tag = uuid.uuid4().hex[:10]
    env = {
        "MLPIPE_NGAS_URL": ngas_server.url,
        "MLPIPE_NGAS_RETRIES": "2",
        "MLPIPE_NGAS_BACKOFF": "0.05",
        "MLPIPE_MLFLOW_TRACKING_URI": mlflow_server_ngas_proxied.url,
        "MLPIPE_PIPELINE_DATA_PREFIX": f"t/{tag}",
        "MLPIPE_PIPELINE_EXPERIMENT": f"exp-{tag}",
        "MLPIPE_MODEL_NAME": f"weather-{tag}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    tmp = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        ctx = TaskContext.from_config()
        name = env["MLPIPE_MODEL_NAME"]

        def preprocessed(*years: int) -> list[dict[str, object]]:
            sources = [str(weather_raw / f"seattle-{y}.csv") for y in years]
            raw = run_task("load-raw", {}, {"sources": sources}, ctx=ctx)
            done = run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": 2}, ctx=ctx)
            return list(done.outputs["preprocessed"])

        run_task("train", {"data": preprocessed(2012, 2013)}, {"alpha": 0.0001}, ctx=ctx)
        run_task("promote", {}, {"model": f"models:/{name}/1"}, ctx=ctx)
        run_task("retrain", {"data": preprocessed(2014)}, {"alpha": 0.01, "epochs": 3}, ctx=ctx)
        client = mlflow.MlflowClient()
        runs = {v: str(client.get_model_version(name, v).run_id) for v in ("1", "2")}
        plots = {
            ("1", SHARED): _figure("v1 residuals", "png"),
            ("2", SHARED): _figure("v2 residuals", "png"),
            ("2", ONLY_V2): _figure("v2 importance", "svg"),
        }
        for (version, path), body in plots.items():
            _log(client, runs[version], path, body, tmp)
        data = {v: _keys(r) for v, r in runs.items()}
        yield Trained(name, env, client, runs, plots, data, env["MLPIPE_PIPELINE_EXPERIMENT"])


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["compare", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def mlpipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLPIPE, *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )


# ------------------------------------------------------------------ the CLI
def test_json_is_what_mlflow_and_the_lineage_hold(trained: Trained, capsys) -> None:
    name, client = trained.name, trained.client
    code, out, err = cli(capsys, f"{name}@production", f"models:/{name}/2", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    champion, challenger = doc["champion"], doc["challenger"]
    assert (champion["version"], champion["alias"], champion["ref"]) == (
        "1",
        "production",
        f"models:/{name}@production",
    )
    assert (challenger["version"], challenger["alias"]) == ("2", "")
    for side, version in ((champion, "1"), (challenger, "2")):
        run = client.get_run(trained.runs[version])
        assert side["run_id"] == trained.runs[version]
        assert side["params"] == run.data.params
        assert side["metrics"] == pytest.approx(run.data.metrics)
    # the data: version 1's own files; version 2's own plus its parent's
    assert [f"{f['id']}#{f['version']}" for f in champion["data"]] == trained.data["1"]
    assert sorted(f"{f['id']}#{f['version']}" for f in challenger["data"]) == sorted(
        trained.data["2"] + trained.data["1"]
    )
    assert challenger["lineage"] == [f"{name}/2", f"{name}/1"]
    assert doc["data"] == {
        "both": sorted(trained.data["1"]),
        "champion": [],
        "challenger": sorted(trained.data["2"]),
    }
    assert any("seattle-2014" in k for k in trained.data["2"])
    assert champion["plots"] == [SHARED] and challenger["plots"] == sorted([SHARED, ONLY_V2])
    alpha = next(p for p in doc["params"] if p["name"] == "alpha")
    assert (alpha["champion"], alpha["challenger"]) == ("0.0001", "0.01")
    rmse = next(m for m in doc["metrics"] if m["name"] == "rmse")
    v1 = client.get_run(trained.runs["1"]).data.metrics["rmse"]
    v2 = client.get_run(trained.runs["2"]).data.metrics["rmse"]
    assert rmse["change"] == pytest.approx(v2 - v1)


def test_text_names_both_versions_and_the_differences(trained: Trained, capsys) -> None:
    name = trained.name
    code, out, err = cli(capsys, name, f"{name}/2")  # NAME alone: the production alias
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"champion   models:/{name}@production = version 1 (run ")
    assert lines[1].startswith(f"challenger models:/{name}/2 = version 2 (run {trained.runs['2']}")
    assert re.search(r"^\s+alpha\s+0\.0001\s+0\.01\s+differs$", out, re.M), out
    v1 = trained.client.get_run(trained.runs["1"]).data.metrics["rmse"]
    v2 = trained.client.get_run(trained.runs["2"]).data.metrics["rmse"]
    row = next(line.split() for line in lines if line.split()[:1] == ["rmse"])
    assert [float(x) for x in row[1:]] == pytest.approx([v1, v2, v2 - v1], rel=1e-5)
    assert f"lineage {name}/2 <- {name}/1" in out
    assert "only the challenger's: 1 file(s)" in out and trained.data["2"][0] in out
    assert f"{SHARED}: champion / challenger" in out and f"{ONLY_V2}: - / challenger" in out


def test_markdown_report_with_the_plots_side_by_side(trained: Trained, capsys, tmp_path) -> None:
    name = trained.name
    report = tmp_path / "report.md"
    args = (f"{name}@production", f"{name}/2", "--format", "markdown", "-o", str(report))
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    assert out == "" and f"wrote {report}" in err
    text = report.read_text()
    assert text.startswith(f"## Model comparison: {name} v1 (production) vs {name} v2\n")
    assert "| `alpha` **(differs)** | 0.0001 | 0.01 |" in text
    shared = (
        f"| `{SHARED}` | ![champion {SHARED}](report-plots/champion/{SHARED}) "
        f"| ![challenger {SHARED}](report-plots/challenger/{SHARED}) |"
    )
    assert shared in text
    assert f"| `{ONLY_V2}` | - | ![challenger {ONLY_V2}](report-plots/challenger/{ONLY_V2}) |" in (
        text
    )
    # every embedded image is the file logged to that run
    links = re.findall(r"\]\((report-plots/[^)]+)\)", text)
    assert len(links) == 3
    for role, version in (("champion", "1"), ("challenger", "2")):
        for (v, path), body in trained.plots.items():
            if v == version:
                assert (tmp_path / "report-plots" / role / path).read_bytes() == body
    # to stdout: the same tables, plots named only
    code, out, _ = cli(capsys, f"{name}@production", f"{name}/2", "--format", "markdown")
    assert code == 0 and f"| `{SHARED}` | yes | yes |" in out
    assert out.split("### Plots")[0] == text.split("### Plots")[0]


@pytest.mark.parametrize(
    ("refs", "said"),
    [
        (("nosuch-{tag}@production", "{name}/1"), "no registered model 'nosuch-{tag}'"),
        (("{name}@production", "{name}/9"), "'{name}' has no version 9 (versions 1, 2;"),
        (("{name}@staging", "{name}/2"), "alias 'staging' is not set on '{name}'"),
        (("{name}@production", "{name}/two"), "version 'two' is not a number"),
    ],
    ids=["model", "version", "alias", "not-a-version"],
)
def test_unknown_model_version_or_alias_is_exit_2_naming_it(
    trained: Trained, capsys, refs, said
) -> None:
    tag = uuid.uuid4().hex[:6]
    given = [r.format(name=trained.name, tag=tag) for r in refs]
    code, out, err = cli(capsys, *given)
    assert code == 2, err
    assert said.format(name=trained.name, tag=tag) in err and out == ""


# ------------------------------------------------------- MLflow failing
@pytest.mark.parametrize(
    ("failing", "said"),
    [
        (("GET", r"/registered-models/get"), "the MLflow server at"),
        (("GET", r"/model-versions/get"), "the MLflow server at"),
        (("GET", r"/mlflow-artifacts/artifacts\?path="), "listing the artifacts"),
        (("GET", r"/mlflow-artifacts/artifacts/.*data\.json"), "cannot read data.json"),
    ],
    ids=["model", "version", "artifact-listing", "data.json"],
)
def test_mlflow_5xx_is_exit_1_never_not_found(trained: Trained, failing, said) -> None:
    with FaultyProxy(trained.env["MLPIPE_MLFLOW_TRACKING_URI"]) as proxy:
        proxy.fail = failing
        env = {**os.environ, **trained.env, **FAST, "MLPIPE_MLFLOW_TRACKING_URI": proxy.url}
        proc = mlpipe("compare", f"{trained.name}@production", f"{trained.name}/2", env=env)
    assert proxy.failed >= 1
    assert proc.returncode == 1, proc.stderr
    assert said in proc.stderr, proc.stderr
    for absent in ("no registered model", "has no version", "is not set", "Traceback"):
        assert absent not in proc.stderr
    assert proc.stdout == ""


def test_mlflow_timeout_is_exit_1_unreachable(trained: Trained) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = {**os.environ, **trained.env, **FAST, "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
        proc = mlpipe(
            "compare",
            f"{trained.name}@production",
            f"{trained.name}/2",
            env={**env, "MLPIPE_MLFLOW_TRACKING_URI": url},
        )
    assert proc.returncode == 1, proc.stderr
    assert f"the MLflow tracking server at {url} is unreachable" in proc.stderr, proc.stderr
    assert "no registered model" not in proc.stderr


def test_refused_login_is_exit_1_never_not_found(mlflow_server_factory, tmp_path_factory) -> None:
    work = tmp_path_factory.mktemp("compare-auth")
    ini = work / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{work / 'auth.db'}\n"
        "admin_username = admin\nadmin_password = Compare-admin-pw-0\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    server = mlflow_server_factory(
        "compare-auth",
        "--app-name",
        "basic-auth",
        env={"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "tests"},
    )
    env = {
        **os.environ,
        **FAST,
        "MLPIPE_MLFLOW_TRACKING_URI": server.url,
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": "wrong",
    }
    proc = mlpipe("compare", "m@production", "m/2", env=env)
    assert proc.returncode == 1, proc.stderr
    assert "refused the login of user 'admin' (HTTP 401)" in proc.stderr, proc.stderr
    assert "no registered model" not in proc.stderr


# ------------------------------------------------------- the results site
def _site(env: dict[str, str], work: Path, trained: Trained) -> tuple[subprocess.Popen, str]:
    proc, url, _ = start_web_site(
        MLPIPE, env, work, "--experiment", trained.experiment, "--model", trained.name
    )
    return proc, url


@pytest.fixture(scope="module")
def site(trained: Trained, tmp_path_factory) -> Iterator[str]:
    env = {**os.environ, **trained.env}
    proc, url = _site(env, tmp_path_factory.mktemp("compare-web"), trained)
    try:
        yield url
    finally:
        stop_process(proc)


def test_site_compares_two_versions_as_the_cli_does(trained: Trained, site: str, capsys) -> None:
    name = trained.name
    page = f"/models/{name}/compare/production/2"
    got = requests.get(f"{site}/api{page}", timeout=60)
    assert got.status_code == 200, got.text
    doc = got.json()
    code, out, err = cli(capsys, f"{name}@production", f"{name}/2", "--format", "json")
    assert code == 0, err
    cli_doc = json.loads(out)
    for role in ("champion", "challenger"):
        links = doc[role].pop("plot_links")
        assert links == {
            p: f"/plots/models/{name}/versions/{doc[role]['version']}/artifacts/{p}"
            for p in cli_doc[role]["plots"]
        }
    assert doc == cli_doc
    html = requests.get(site + page, timeout=60)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "alpha <strong>differs</strong>" in html.text
    for version, path in ((1, SHARED), (2, SHARED), (2, ONLY_V2)):
        src = f"/plots/models/{name}/versions/{version}/artifacts/{path}"
        assert f'<img src="{src}"' in html.text
        image = requests.get(site + src, timeout=60)
        assert image.status_code == 200
        assert image.content == trained.plots[(str(version), path)]
        assert image.headers["content-type"] == (
            "image/svg+xml" if path.endswith(".svg") else "image/png"
        )
    # the model page links each other version to its comparison with production
    model = requests.get(f"{site}/models/{name}", timeout=60).text
    assert f'href="/models/{name}/compare/production/2"' in model
    assert f'href="/models/{name}/compare/production/1"' not in model


@pytest.mark.parametrize(
    "path",
    [
        "/api/models/{name}/compare/production/9",  # no such version
        "/api/models/{name}/compare/staging/2",  # alias not set
        "/api/models/{name}/compare/..%2f..%2fx/2",
        "/api/models/not-published/compare/production/2",
        "/plots/models/{name}/versions/1/artifacts/" + ONLY_V2,  # version 2's only
        "/plots/models/{name}/versions/2/artifacts/data.json",  # not a plot
        "/plots/models/{name}/versions/2/artifacts/eval/heldout.csv",
        "/plots/models/{name}/versions/2/artifacts/plots/../data.png",
        "/plots/models/{name}/versions/9/artifacts/" + SHARED,
    ],
)
def test_site_unknown_versions_and_unlisted_artifacts_are_404(
    trained: Trained, site: str, path: str
) -> None:
    got = requests.get(site + path.format(name=trained.name), timeout=60)
    assert got.status_code == 404, (path, got.status_code, got.text[:300])


def test_site_answers_502_when_mlflow_fails_never_404(trained: Trained, tmp_path: Path) -> None:
    with FaultyProxy(trained.env["MLPIPE_MLFLOW_TRACKING_URI"]) as proxy:
        proxy.fail = ("GET", r"/model-versions/get|/mlflow-artifacts/artifacts")
        env = {**os.environ, **trained.env, **FAST, "MLPIPE_MLFLOW_TRACKING_URI": proxy.url}
        proc, url = _site(env, tmp_path, trained)
        try:
            name = trained.name
            for path in (
                f"/api/models/{name}/compare/production/2",
                f"/plots/models/{name}/versions/2/artifacts/{SHARED}",
            ):
                got = requests.get(url + path, timeout=120)
                assert got.status_code == 502, (path, got.status_code, got.text[:300])
        finally:
            stop_process(proc)
    assert proxy.failed >= 2
