"""``mlpipe serve`` (issue 15 item 4): the production alias over HTTP, following the alias.

Each test trains real versions of its own model (the weather example, through the
tasks) on a real MLflow server whose artifacts are proxied to the NGAS double, and
runs ``mlpipe serve`` as its own process (uvicorn), as ``mlpipe-serve@.service``
starts it; the tests speak HTTP to it. Readiness and the switch are waited for by
polling ``/health`` and ``/version``; no test sleeps for a fixed time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
import requests

from http_faults import FaultyProxy
from mlpipe.models.weather import WeatherModel
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import run_task
from procs import free_port, stop_process, wait_until

MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")
POLL = 0.3  # the servers' poll interval (s)
# no retries, short timeouts: a failed poll is reported in seconds, not minutes
FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


# ------------------------------------------------------------------ helpers
def features(ctx: TaskContext, weather_raw: Path, lags: int, *years: int) -> list[dict]:
    raw = run_task(
        "load-raw", {}, {"sources": [str(weather_raw / f"seattle-{y}.csv") for y in years]}, ctx=ctx
    )
    return run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": lags}, ctx=ctx).outputs[
        "preprocessed"
    ]


def train(ctx: TaskContext, data: list[dict], **params: object) -> str:
    """A new version of the test's model; its number."""
    model = run_task("train", {"data": data}, params, ctx=ctx).outputs["model"]
    return model.rsplit("/", 1)[1]


def promote(ctx: TaskContext, name: str, version: str) -> None:
    run_task("promote", {}, {"model": f"models:/{name}/{version}"}, ctx=ctx)


def rows(weather_raw: Path, lags: int = 1, n: int = 1) -> pd.DataFrame:
    """``n`` rows of model features (2015: no version was trained on them)."""
    plugin = WeatherModel()
    frame = plugin.preprocess(weather_raw / "seattle-2015.csv", {"lags": lags})
    return frame[plugin.feature_columns(frame)].head(n)


def split(frame: pd.DataFrame) -> dict:
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


@dataclass
class Served:
    url: str
    proc: subprocess.Popen
    log: Path

    def version(self) -> dict:
        return requests.get(f"{self.url}/version", timeout=10).json()

    def invoke(self, document: object, **kw: object) -> requests.Response:
        return requests.post(f"{self.url}/invocations", json=document, timeout=30, **kw)  # type: ignore[arg-type]

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


def serve_env(tracking_uri: str | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, **FAST, "MLPIPE_SERVE_POLL_INTERVAL": str(POLL), **extra}
    if tracking_uri:
        env["MLPIPE_MLFLOW_TRACKING_URI"] = tracking_uri
    return env


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    started: list[subprocess.Popen] = []

    def _start(*args: str, env: dict[str, str] | None = None) -> Served:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        proc = subprocess.Popen(
            [MLPIPE, "serve", "--port", str(port), *args],
            env=env or serve_env(),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: requests.get(f"{url}/health", timeout=5).status_code == 200,
            "mlpipe serve",
            proc,
            log=log,
        )
        return Served(url, proc, log)

    yield _start
    for proc in started:
        stop_process(proc)


@dataclass
class RequestLoop:
    """POSTs ``document`` back to back in a thread; every answer's version and body."""

    served: Served
    document: dict
    answers: list[tuple[str, list]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RequestLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    r = session.post(
                        f"{self.served.url}/invocations", json=self.document, timeout=30
                    )
                except requests.RequestException as exc:
                    self.errors.append(f"{exc.__class__.__name__}: {exc}")
                    continue
                if r.status_code != 200:
                    self.errors.append(f"HTTP {r.status_code}: {r.text[:300]}")
                    continue
                self.answers.append((r.headers["X-Mlpipe-Model-Version"], r.json()["predictions"]))

    def count(self, version: str) -> int:
        return sum(1 for v, _ in list(self.answers) if v == version)


def predictions(name: str, version: str, frame: pd.DataFrame) -> list[float]:
    """What the version predicts for ``frame``, loaded here (not through the server)."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return [float(x) for x in model.predict(frame)]


# -------------------------------------------------------------------- tests
def test_serves_production_then_follows_a_promotion_with_no_failed_request(
    task_env, weather_raw, start
):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    data = features(ctx, weather_raw, 1, 2012, 2013)
    v1 = train(ctx, data)
    promote(ctx, name, v1)
    served = start()

    # (a) version 1 answers, and says so
    frame = rows(weather_raw, n=3)
    expected1 = predictions(name, v1, frame)
    r = served.invoke(split(frame))
    assert r.status_code == 200, r.text
    assert r.headers["X-Mlpipe-Model-Version"] == v1 == "1"
    assert r.headers["X-Mlpipe-Model-Name"] == name
    assert r.json()["predictions"] == pytest.approx(expected1)
    info = served.version()
    assert (info["name"], info["version"], info["alias"]) == (name, "1", "production")
    assert info["run_id"] == mlflow.MlflowClient().get_model_version(name, "1").run_id
    assert info["loaded_at"] and info["refused"] == {} and info["poll_error"] is None
    # the other forms of MLflow's scoring JSON and CSV give the same answer
    records = json.loads(frame.to_json(orient="records"))
    for document in (
        {"dataframe_records": records},
        {"inputs": {c: frame[c].tolist() for c in frame.columns}},
        {"instances": records},
    ):
        r = served.invoke(document)
        assert r.status_code == 200, (document, r.text)
        assert r.json()["predictions"] == pytest.approx(expected1)
    r = requests.post(
        f"{served.url}/invocations",
        data=frame.to_csv(index=False),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["predictions"] == pytest.approx(expected1), r.text
    assert requests.get(f"{served.url}/ping", timeout=10).status_code == 200

    # (b) version 2, promoted while a request loop runs
    v2 = train(ctx, data, alpha=0.5, seed=7)
    one = rows(weather_raw)
    expected = {v1: predictions(name, v1, one), v2: predictions(name, v2, one)}
    assert expected[v1] != pytest.approx(expected[v2])  # the answers tell the versions apart
    with RequestLoop(served, split(one)) as loop:
        wait_until(lambda: loop.count(v1) >= 20, "answers of version 1")
        promote(ctx, name, v2)
        promoted = time.monotonic()
        wait_until(lambda: served.version()["version"] == v2, "the switch to version 2")
        switched = time.monotonic() - promoted
        wait_until(lambda: loop.count(v2) >= 20, "answers of version 2")
    assert loop.errors == [], loop.errors[:5]
    seen = [v for v, _ in loop.answers]
    # every answer is the prediction of the version its header names; 1 then 2, never back
    for version, got in loop.answers:
        assert got == pytest.approx(expected[version]), version
    first2 = seen.index(v2)
    assert set(seen[:first2]) == {v1} and set(seen[first2:]) == {v2}, "flapped between versions"
    info = served.version()
    assert info["alias_version"] == v2
    # within the poll interval plus the new version's load (and HTTP round trips)
    assert switched <= POLL + info["load_seconds"] + 5, (switched, info)
    assert f"now serving {name} version 2" in served.logged()


def test_a_version_failing_its_check_is_not_switched_to(task_env, weather_raw, start, tmp_path):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    promote(ctx, name, train(ctx, features(ctx, weather_raw, 1, 2012, 2013)))
    # the request the site's clients send: one lag of temp_max
    check = tmp_path / "check.json"
    one = rows(weather_raw, lags=1)
    check.write_text(json.dumps(split(one)))
    served = start("--check-input", str(check))

    # version 2 needs two lags: it loads, but would refuse every client request
    v2 = train(ctx, features(ctx, weather_raw, 2, 2012, 2013))
    with RequestLoop(served, split(one)) as loop:
        promote(ctx, name, v2)
        wait_until(lambda: v2 in served.version()["refused"], "the refusal of version 2")
        wait_until(lambda: loop.count("1") >= 10, "answers after the refusal")
    assert loop.errors == []
    assert {v for v, _ in loop.answers} == {"1"}
    info = served.version()
    assert info["version"] == "1" and info["alias_version"] == v2 == "2"
    why = info["refused"]["2"]
    assert "fails its check" in why and "temp_max_lag2" in why and str(check) in why, why
    log = served.logged()
    assert "version 2 fails its check" in log and "not switching, still serving version 1" in log
    r = served.invoke(split(one))
    assert r.status_code == 200 and r.headers["X-Mlpipe-Model-Version"] == "1"

    # a good version after it is taken: the refusal does not wedge the server
    v3 = train(ctx, features(ctx, weather_raw, 1, 2014))
    promote(ctx, name, v3)
    wait_until(lambda: served.version()["version"] == v3, "the switch to version 3")
    assert served.invoke(split(one)).headers["X-Mlpipe-Model-Version"] == "3"


def test_mlflow_failing_or_gone_while_polling_keeps_serving(
    task_env, weather_raw, start, mlflow_server_ngas_proxied
):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    data = features(ctx, weather_raw, 1, 2012, 2013)
    promote(ctx, name, train(ctx, data))
    one = rows(weather_raw)
    with FaultyProxy(mlflow_server_ngas_proxied.url) as proxy:
        # the server reaches MLflow only through the proxy; the test reaches it directly
        served = start(env=serve_env(proxy.url, MLPIPE_SERVE_POLL_MAX="1.2"))
        with RequestLoop(served, split(one)) as loop:
            # 5xx: the alias cannot be read; the server keeps answering with version 1
            proxy.fail = ("GET", r"/registered-models/get")
            wait_until(lambda: served.version()["poll_failures"] >= 3, "failed polls")
            v2 = train(ctx, data, alpha=0.5)
            promote(ctx, name, v2)
            failing = served.version()
            assert failing["version"] == "1", failing
            assert f"the MLflow server at {proxy.url} failed" in failing["poll_error"], failing
            assert failing["retry_in"] > POLL  # backing off
            # MLflow answers again: the promotion is picked up
            proxy.fail = None
            wait_until(lambda: served.version()["version"] == v2, "the switch after recovery")
            wait_until(lambda: loop.count(v2) >= 5, "answers of version 2")
        assert loop.errors == [], loop.errors[:5]
        assert proxy.failed >= 3
    # the proxy is gone: MLflow is unreachable for the server, which keeps serving
    wait_until(lambda: "unreachable" in (served.version()["poll_error"] or ""), "unreachable")
    for _ in range(5):
        r = served.invoke(split(one))
        assert r.status_code == 200 and r.headers["X-Mlpipe-Model-Version"] == v2, r.text
    assert requests.get(f"{served.url}/health", timeout=10).status_code == 200
    log = served.logged()
    assert f"the MLflow server at {proxy.url} failed" in log
    assert "still serving version 1" in log and "unreachable" in log


def test_bad_request_bodies_are_400_saying_what_is_wrong(task_env, weather_raw, start):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    promote(ctx, name, train(ctx, features(ctx, weather_raw, 1, 2014)))
    served = start(env=serve_env(MLPIPE_SERVE_MAX_BODY="64K"))
    one = rows(weather_raw)
    record = json.loads(one.to_json(orient="records"))[0]
    cases: list[tuple[bytes, str, int, str]] = [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "the body is a list"),
        (b'{"rows": []}', "application/json", 400, "no input field (keys: rows)"),
        (
            json.dumps({"dataframe_records": [record], "inputs": [record]}).encode(),
            "application/json",
            400,
            "several input fields",
        ),
        (b'{"dataframe_records": []}', "application/json", 400, "dataframe_records holds no rows"),
        (
            json.dumps({"dataframe_records": [{"wind": 1.0}]}).encode(),
            "application/json",
            400,
            "missing inputs",
        ),
        (
            json.dumps({"dataframe_records": [{**record, "wind": "calm"}]}).encode(),
            "application/json",
            400,
            "calm",
        ),
        (b'{"dataframe_split": {"rows": 1}}', "application/json", 400, "'data' field"),
        (
            json.dumps({"dataframe_records": [record], "extra": 1}).encode(),
            "application/json",
            400,
            "unknown key(s) extra",
        ),
        (b"wind\n1\n", "text/csv", 400, "missing inputs"),
        (b"<xml/>", "application/xml", 415, "content type 'application/xml'"),
        (b"{" + b" " * 70_000 + b"}", "application/json", 413, "at most 65536"),
    ]
    for body, content_type, status, message in cases:
        r = requests.post(
            f"{served.url}/invocations",
            data=body,
            headers={"Content-Type": content_type},
            timeout=30,
        )
        assert r.status_code == status, (body[:80], r.status_code, r.text)
        assert message in r.json()["error"], (body[:80], r.json())
        assert r.headers["X-Mlpipe-Model-Version"] == "1"
    # only POST on /invocations, only GET elsewhere
    assert requests.get(f"{served.url}/invocations", timeout=10).status_code == 405
    assert requests.post(f"{served.url}/version", timeout=10).status_code == 405
    # and the server still answers good requests
    r = served.invoke(split(one))
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1, r.text
    assert served.proc.poll() is None


def test_nothing_loadable_at_start_exits_non_zero_saying_why(task_env, weather_raw, tmp_path):
    def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MLPIPE, "serve", "--port", str(free_port()), *args],
            env=env or serve_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    # no such registered model
    done = serve(f"{name}-missing")
    assert done.returncode == 2, done.stderr
    assert f"no registered model '{name}-missing'" in done.stderr
    # a version, but no production alias
    train(ctx, features(ctx, weather_raw, 2, 2014))
    done = serve()
    assert done.returncode == 2, done.stderr
    assert "alias 'production' is not set" in done.stderr and "versions 1" in done.stderr
    # production is a version that fails the check
    promote(ctx, name, "1")
    check = tmp_path / "check.json"
    check.write_text(json.dumps(split(rows(weather_raw, lags=1))))
    done = serve("--check-input", str(check))
    assert done.returncode == 1, done.stderr
    assert "version 1 fails its check" in done.stderr and "temp_max_lag2" in done.stderr
    # a check file that is not a scoring document
    check.write_text("[1]")
    done = serve("--check-input", str(check))
    assert done.returncode == 2 and "check_input" in done.stderr, done.stderr
    # MLflow unreachable
    done = serve(env=serve_env(f"http://127.0.0.1:{free_port()}"))
    assert done.returncode == 1, done.stderr
    assert "unreachable" in done.stderr
    # nothing listened at any point: a bad port is refused before anything
    done = serve("--port", "70000")
    assert done.returncode == 2 and "--port" in done.stderr, done.stderr
