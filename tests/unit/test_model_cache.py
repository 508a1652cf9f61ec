"""Model versions and run artifacts through the local read cache (issue 11 item 1).

Real MLflow servers (session fixtures): artifacts proxied to the NGAS double
(``mlflow-artifacts:``) and stored by the client on NGAS (``ngas://``). The
proxied server is reached through :class:`http_faults.FaultyProxy`, which
records every request (the count) and answers chosen ones with an error. The
versions are the weather example's, fitted on the committed 2012 data and
registered once per module.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient

from http_faults import FaultyProxy
from mlpipe.cli import main
from mlpipe.errors import BadInput
from mlpipe.models.weather import WeatherModel
from mlpipe.serve import versions
from mlpipe.storage import CacheMiss, ReadCache
from mlpipe.tasks import lineage
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.mlflow_errors import MlflowAuthRefused, MlflowFailed, MlflowUnreachable
from mlpipe.tasks.model_cache import ModelCache, copy_tree
from mlpipe.tasks.registry import run_task
from mlpipe.web.catalog import Catalog
from mlpipe.web.settings import WebSettings
from procs import MLFLOW_FAIL_FAST, free_port

MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")
ARTIFACTS = "/mlflow-artifacts/artifacts"
FAST = MLFLOW_FAIL_FAST


@dataclass(frozen=True)
class Registered:
    name: str
    frame: pd.DataFrame  # preprocessed rows the versions predict
    predictions: dict[str, list[float]]  # version -> what MLflow's own load predicts


def _register(tracking_uri: str, weather_raw: Path) -> Registered:
    """Two versions of a weather model on ``tracking_uri`` (alias production -> 1)."""
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    plugin = WeatherModel()
    frame = plugin.preprocess(weather_raw / "seattle-2012.csv", {"lags": 1})
    name = f"cached-{uuid.uuid4().hex[:8]}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(f"model-cache-{name}")
    for n, alpha in enumerate((1e-4, 1e-2), start=1):
        with mlflow.start_run():
            plugin.log_model(plugin.train(frame, {"alpha": alpha}), frame, name)
            parent = {"parent": f"models:/{name}/{n - 1}"} if n > 1 else {}
            mlflow.log_dict({"data": [{"id": f"d/{n}.csv", "version": 1}], **parent}, "data.json")
            mlflow.log_text(f"plot of version {n}", "plots/fit.png")  # served as bytes
    client = MlflowClient(tracking_uri)
    client.set_registered_model_alias(name, "production", "1")
    rows = frame[plugin.feature_columns(frame)].head(20)
    expected = {
        v: [float(x) for x in mlflow.pyfunc.load_model(f"models:/{name}/{v}").predict(rows)]
        for v in ("1", "2")
    }
    return Registered(name, frame, expected)


@pytest.fixture(scope="module")
def proxied(mlflow_server_ngas_proxied, weather_raw) -> Iterator[tuple[FaultyProxy, Registered]]:
    with FaultyProxy(mlflow_server_ngas_proxied.url) as proxy:
        yield proxy, _register(mlflow_server_ngas_proxied.url, weather_raw)


@pytest.fixture
def proxy(proxied, monkeypatch) -> Iterator[FaultyProxy]:
    """The proxy in front of the proxied server, as the tracking URI, faults and log cleared."""
    faulty, _ = proxied
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", faulty.url)
    mlflow.set_tracking_uri(faulty.url)
    faulty.seen.clear()
    yield faulty
    faulty.fail, faulty.status = None, 503


@pytest.fixture
def registered(proxied) -> Registered:
    return proxied[1]


def cache_at(path: Path, mode: str = "good") -> ReadCache:
    return ReadCache(path, mode=mode, client_options={"retries": 0, "timeout": 10})  # type: ignore[arg-type]


def models(path: Path, url: str, mode: str = "good") -> ModelCache:
    """A fresh cache object on ``path`` (what a new process would open)."""
    return ModelCache(cache_at(path, mode), MlflowClient(url))


def predict(path: Path, reg: Registered) -> list[float]:
    plugin = WeatherModel()
    rows = reg.frame[plugin.feature_columns(reg.frame)].head(20)
    return [float(x) for x in mlflow.pyfunc.load_model(str(path)).predict(rows)]


def artifact_requests(proxy: FaultyProxy) -> list[tuple[str, str]]:
    return [(m, p) for m, p in proxy.seen if ARTIFACTS in p]


# ------------------------------------------------------------------ versions
def test_second_load_of_a_version_makes_no_request_in_any_mode(proxy, registered, tmp_path):
    first = models(tmp_path, proxy.url).version(registered.name, "1")
    assert first.downloaded and (first.path / "MLmodel").is_file()
    got = artifact_requests(proxy)
    assert any(p.endswith("MLmodel") for _, p in got), got  # downloaded through MLflow
    assert predict(first.path, registered) == registered.predictions["1"]
    for mode in ("good", "bad", "offline"):
        proxy.seen.clear()
        again = models(tmp_path, proxy.url, mode).version(registered.name, "1")
        assert proxy.seen == [], (mode, proxy.seen)  # not one request, artifact or other
        assert not again.downloaded and again.path == first.path
        assert again.run_id == first.run_id != ""
    assert predict(again.path, registered) == registered.predictions["1"]
    stats = cache_at(tmp_path).stats()
    assert stats.trees == 1 and stats.counters["tree_downloads"] == 1
    assert stats.counters["tree_hits"] == 3


def test_ngas_direct_artifacts_are_cached_too(
    mlflow_server_ngas_client, ngas_faults, weather_raw, tmp_path
):
    reg = _register(mlflow_server_ngas_client.url, weather_raw)
    with FaultyProxy(mlflow_server_ngas_client.url) as proxy:
        before = ngas_faults.count()
        first = models(tmp_path, proxy.url).version(reg.name, "2")
        assert first.downloaded and ngas_faults.count() > before  # from NGAS itself
        assert artifact_requests(proxy) == []  # not through MLflow
        assert predict(first.path, reg) == reg.predictions["2"]
        before = ngas_faults.count()
        for mode in ("good", "bad", "offline"):
            proxy.seen.clear()
            again = models(tmp_path, proxy.url, mode).version(reg.name, "2")
            assert not again.downloaded and proxy.seen == [], (mode, proxy.seen)
        assert ngas_faults.count() == before  # no NGAS request either


# ------------------------------------------------------------------- aliases
def test_alias_one_request_in_good_mode_cached_resolution_in_bad_and_offline(
    proxy, registered, tmp_path, caplog
):
    name = registered.name
    direct = MlflowClient(proxy.upstream)
    direct.set_registered_model_alias(name, "staging", "1")
    assert models(tmp_path, proxy.url).get(f"{name}@staging").version == "1"
    proxy.seen.clear()
    assert models(tmp_path, proxy.url).get(f"{name}@staging").version == "1"
    assert len(proxy.seen) == 1 and artifact_requests(proxy) == [], proxy.seen

    direct.set_registered_model_alias(name, "staging", "2")  # moved behind the cache's back
    for mode in ("bad", "offline"):
        proxy.seen.clear()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mlpipe.tasks.model_cache"):
            got = models(tmp_path, proxy.url, mode).get(f"models:/{name}@staging")
        assert got.version == "1" and proxy.seen == [], (mode, proxy.seen)
        assert "may be stale" in caplog.text and f"{name}@staging" in caplog.text

    proxy.seen.clear()
    moved = models(tmp_path, proxy.url).get(f"{name}@staging")
    assert moved.version == "2" and moved.downloaded
    assert predict(moved.path, registered) == registered.predictions["2"]
    proxy.seen.clear()
    bad = models(tmp_path, proxy.url, "bad").get(f"{name}@staging")
    assert bad.version == "2" and proxy.seen == []  # good mode's answer was recorded


def test_offline_without_anything_cached_is_a_cache_miss_naming_what(proxy, registered, tmp_path):
    with pytest.raises(CacheMiss, match="offline") as err:
        models(tmp_path, proxy.url, "offline").get(f"{registered.name}@production")
    assert "@production" in str(err.value) and str(tmp_path) in str(err.value)
    with pytest.raises(CacheMiss, match="offline"):
        models(tmp_path, proxy.url, "offline").version(registered.name, "2")
    assert proxy.seen == []


# -------------------------------------------------------------------- errors
def test_missing_model_version_or_alias_is_bad_input_naming_what_exists(
    proxy, registered, tmp_path
):
    cache = models(tmp_path, proxy.url)
    with pytest.raises(BadInput, match="has no version 9") as err:
        cache.version(registered.name, "9")
    assert "versions 1, 2" in str(err.value)
    with pytest.raises(BadInput, match="alias 'nope' is not set"):
        cache.get(f"{registered.name}@nope")
    with pytest.raises(BadInput, match="no registered model"):
        cache.get("no-such-model/1")
    assert cache_at(tmp_path).stats().trees == 0


@pytest.mark.parametrize(("status", "error"), [(503, MlflowFailed), (401, MlflowAuthRefused)])
def test_service_errors_are_never_read_as_not_found(proxy, registered, tmp_path, status, error):
    proxy.status = status
    proxy.fail = ("GET", r"/model-versions/get\?")
    with pytest.raises(error) as err:
        models(tmp_path, proxy.url).version(registered.name, "1")
    assert not isinstance(err.value, BadInput) and proxy.failed
    proxy.fail = ("GET", r"/registered-models/get\?")
    with pytest.raises(error):
        models(tmp_path, proxy.url).get(f"{registered.name}@production")
    assert cache_at(tmp_path).stats().trees == 0


def test_unreachable_mlflow_is_unreachable_not_absent(tmp_path, monkeypatch):
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MlflowUnreachable, match="unreachable"):
        models(tmp_path, url).version("anything", "1")
    assert models(tmp_path, url, "auto").mode() == "offline"  # auto measures: nothing answers


def test_unreachable_mlflow_serves_the_cached_alias_with_a_warning(
    proxied, registered, tmp_path, monkeypatch, caplog
):
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    name = registered.name
    with FaultyProxy(proxied[0].upstream) as own:  # this test's name for the server
        first = models(tmp_path, own.url).get(f"{name}@production")
    # closed: nothing listens at own.url any more
    for mode in ("good", "auto"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mlpipe.tasks.model_cache"):
            again = models(tmp_path, own.url, mode).get(f"{name}@production")
        assert again.version == first.version and not again.downloaded, mode
        assert "may be stale" in caplog.text and f"{name}@production" in caplog.text, mode
    assert predict(again.path, registered) == registered.predictions[first.version]
    with pytest.raises(MlflowUnreachable):  # never resolved here: nothing to fall back on
        models(tmp_path, own.url).get(f"{name}@staging")


def test_a_server_that_never_answers_is_a_timeout_not_absent(tmp_path, monkeypatch):
    for key, value in {**FAST, "MLFLOW_HTTP_REQUEST_TIMEOUT": "1"}.items():
        monkeypatch.setenv(key, value)
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(MlflowUnreachable, match="unreachable"):
            models(tmp_path, url).get("anything@production")
    assert cache_at(tmp_path).stats().trees == 0


def test_auto_mode_measures_mlflow_once_per_ttl(proxy, registered, tmp_path):
    cache = models(tmp_path, proxy.url, "auto")
    assert cache.mode() == "good"  # loopback: well under probe_max_latency_ms
    health = [p for _, p in proxy.seen if p == "/health"]
    assert len(health) == 3, proxy.seen
    proxy.seen.clear()
    assert cache.get(f"{registered.name}@production").version == "1"
    assert not any(p == "/health" for _, p in proxy.seen)  # reused within probe_ttl


def test_a_failed_download_records_nothing_and_the_next_load_completes(proxy, registered, tmp_path):
    proxy.fail = ("GET", ARTIFACTS + r"/.*model\.skops")
    with pytest.raises(MlflowFailed, match="downloading"):
        models(tmp_path, proxy.url).version(registered.name, "2")
    assert proxy.failed
    trees = tmp_path / "trees"
    left = [p.name for p in trees.iterdir()]
    assert cache_at(tmp_path).stats().trees == 0 and left == [], left  # no entry, no temp dir
    with pytest.raises(CacheMiss):  # nothing partial is served, even offline
        models(tmp_path, proxy.url, "offline").version(registered.name, "2")
    proxy.fail = None
    done = models(tmp_path, proxy.url).version(registered.name, "2")
    assert done.downloaded and predict(done.path, registered) == registered.predictions["2"]


def test_a_tree_whose_files_changed_is_fetched_again(proxy, registered, tmp_path):
    first = models(tmp_path, proxy.url).version(registered.name, "1")
    pkl = next(first.path.rglob("model.skops"))
    pkl.write_bytes(pkl.read_bytes()[:10])  # truncated on disk
    proxy.seen.clear()
    again = models(tmp_path, proxy.url).version(registered.name, "1")
    assert again.downloaded and artifact_requests(proxy)
    assert predict(again.path, registered) == registered.predictions["1"]


def test_two_loaders_at_once_download_the_version_once(proxy, registered, tmp_path):
    got: list[object] = []
    loaders = [
        threading.Thread(
            target=lambda: got.append(models(tmp_path, proxy.url).version(registered.name, "1"))
        )
        for _ in range(2)
    ]
    for t in loaders:
        t.start()
    for t in loaders:
        t.join(timeout=120)
    assert len(got) == 2 and len({g.path for g in got}) == 1  # type: ignore[attr-defined]
    assert sorted(g.downloaded for g in got) == [False, True]  # type: ignore[attr-defined]
    assert cache_at(tmp_path).stats().counters["tree_downloads"] == 1


def test_trees_count_towards_max_size_and_are_evicted_lru(proxy, registered, tmp_path):
    one = models(tmp_path, proxy.url).version(registered.name, "1")
    size = cache_at(tmp_path).stats().size
    small = ReadCache(tmp_path, mode="good", max_size=size + size // 2)
    two = ModelCache(small, MlflowClient(proxy.url)).version(registered.name, "2")
    assert two.path.is_dir() and not one.path.exists()  # v1 evicted to make room
    stats = small.stats()
    assert stats.trees == 1 and stats.size <= small.max_size
    assert small.prune(everything=True)[0] == 1 and not two.path.exists()


# ---------------------------------------------------------------- run files
def test_a_finished_runs_artifact_is_read_once(proxy, registered, tmp_path):
    direct = MlflowClient(proxy.upstream)
    exp = direct.get_experiment_by_name(f"model-cache-{registered.name}")
    assert exp is not None
    run = direct.create_run(exp.experiment_id)
    # the client, not mlflow's fluent API: its active experiment is process-global and
    # another test of this worker may have set it
    direct.log_dict(run.info.run_id, {"n": 1}, "mlpipe/outputs.json")
    direct.set_terminated(run.info.run_id)
    run = MlflowClient(proxy.url).get_run(run.info.run_id)
    assert run.info.status == "FINISHED"
    mlflow.set_tracking_uri(proxy.url)
    proxy.seen.clear()
    got = models(tmp_path, proxy.url).run_file(run, "mlpipe/outputs.json", tmp_path / "s")
    assert got is not None and json.loads(got.read_text()) == {"n": 1}
    assert artifact_requests(proxy)
    proxy.seen.clear()
    again = models(tmp_path, proxy.url, "offline").run_file(run, "mlpipe/outputs.json", tmp_path)
    assert again == got and proxy.seen == []
    missing = models(tmp_path, proxy.url).run_file(run, "mlpipe/none.json", tmp_path / "s")
    assert missing is None and cache_at(tmp_path).stats().trees == 1
    proxy.fail = ("GET", ARTIFACTS)
    with pytest.raises(MlflowFailed):  # a 503 listing is not "absent"
        models(tmp_path, proxy.url).run_file(run, "mlpipe/other.json", tmp_path / "s")


def test_the_lineage_reads_each_runs_data_json_once(proxy, registered, tmp_path):
    client = MlflowClient(proxy.url)
    found = lineage.of_version(client, registered.name, "2", "t", models(tmp_path, proxy.url))
    assert [f["id"] for f in found.files] == ["d/2.csv", "d/1.csv"]
    assert [p for _, p in artifact_requests(proxy) if p.endswith("/data.json")]
    proxy.seen.clear()
    again = lineage.of_version(client, registered.name, "2", "t", models(tmp_path, proxy.url))
    assert again == found and artifact_requests(proxy) == [], proxy.seen


def test_the_results_site_reads_a_versions_plot_once(proxy, registered, tmp_path):
    settings = WebSettings((f"model-cache-{registered.name}",), (registered.name,))

    def plot() -> bytes:
        site = Catalog(settings, MlflowClient(proxy.url), cache_at(tmp_path))  # a fresh site
        return site.version_plot(registered.name, "1", "plots/fit.png")

    assert plot() == b"plot of version 1"
    assert [p for m, p in proxy.seen if m == "GET" and p.endswith("/plots/fit.png")]
    proxy.seen.clear()
    assert plot() == b"plot of version 1"
    downloads = [p for m, p in proxy.seen if p.endswith("/plots/fit.png")]
    assert downloads == [] and proxy.seen, proxy.seen  # MLflow asked about the run, no download


# -------------------------------------------------------------- task and CLI
def test_infer_and_the_results_site_read_through_the_cache(
    proxy, registered, task_env, monkeypatch, tmp_path
):
    monkeypatch.setenv("MLPIPE_MLFLOW_TRACKING_URI", proxy.url)
    monkeypatch.setenv("MLPIPE_CACHE_DIR", str(tmp_path / "cache"))
    ctx = TaskContext.from_config()
    csv = tmp_path / "rows.csv"
    registered.frame.head(30).to_csv(csv, index=False)
    info = ctx.ngas.archive(csv, f"{task_env['MLPIPE_PIPELINE_DATA_PREFIX']}/rows.csv")
    data = [{"id": info.file_id, "version": info.version}]
    model = f"models:/{registered.name}/1"
    first = run_task("infer", {"data": data}, {"model": model}, ctx=ctx)
    assert any(p.endswith("model.skops") for _, p in artifact_requests(proxy))
    proxy.seen.clear()
    second = run_task("infer", {"data": data}, {"model": model}, ctx=TaskContext.from_config())
    downloads = [(m, p) for m, p in artifact_requests(proxy) if m == "GET"]
    assert downloads == [], downloads  # the second run logs its own files, reads none
    assert (
        first.outputs["predictions"][0]["checksum"] == second.outputs["predictions"][0]["checksum"]
    )

    # the results site reads each finished run's mlpipe/outputs.json once per machine
    settings = WebSettings((task_env["MLPIPE_PIPELINE_EXPERIMENT"],), (registered.name,))
    web_cache = tmp_path / "web-cache"
    proxy.seen.clear()
    listed = Catalog(settings, MlflowClient(proxy.url), cache_at(web_cache)).outputs()
    assert len(listed) == 1 and listed[0]["run_id"] in (first.run_id, second.run_id)
    read = [p for _, p in artifact_requests(proxy) if p.endswith("/mlpipe/outputs.json")]
    assert len(read) == 2, read  # one per infer run (the same file: stored once)
    proxy.seen.clear()
    again = Catalog(settings, MlflowClient(proxy.url), cache_at(web_cache)).outputs()
    assert again == listed and artifact_requests(proxy) == [], proxy.seen  # a restarted site


def test_serve_loads_and_checks_a_cached_version_with_no_request(proxy, registered, tmp_path):
    check = versions.Check.from_file("")  # the version's own input example
    first = versions.load(models(tmp_path, proxy.url), registered.name, "2", "production", check)
    assert not first.from_cache and artifact_requests(proxy)
    proxy.seen.clear()
    again = versions.load(models(tmp_path, proxy.url), registered.name, "2", "production", check)
    assert again.from_cache and proxy.seen == [] and again.run_id == first.run_id
    assert again.info()["from_cache"] is True
    proxy.fail = ("GET", ARTIFACTS)
    with pytest.raises(versions.DownloadFailed, match="version 1"):  # not cached: MLflow fails
        versions.load(models(tmp_path, proxy.url), registered.name, "1", "production", check)


def test_model_fetch_cli(proxy, registered, tmp_path, monkeypatch, capsys):
    env = {**os.environ, "MLPIPE_MLFLOW_TRACKING_URI": proxy.url, "MLPIPE_CACHE_DIR": str(tmp_path)}

    def fetch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MLPIPE, "model", "fetch", *args], env=env, capture_output=True, text=True, timeout=120
        )

    done = fetch(f"{registered.name}@production", "--dest", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["version"] == "1" and shown["downloaded"] is True
    assert predict(tmp_path / "out", registered) == registered.predictions["1"]
    proxy.seen.clear()
    again = fetch(f"{registered.name}/1")
    assert again.returncode == 0, again.stderr
    assert "from the cache" in again.stdout and proxy.seen == []
    assert Path(again.stdout.splitlines()[-1], "MLmodel").is_file()
    # in this process from here on (the same command line, no interpreter start-up)
    monkeypatch.setenv("MLPIPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("MLPIPE_MLFLOW_TRACKING_URI", proxy.url)
    capsys.readouterr()
    assert main(["model", "fetch", f"{registered.name}/7"]) == 2
    assert "has no version 7" in capsys.readouterr().err
    assert main(["cache", "ls"]) == 0
    listed = capsys.readouterr().out
    assert f"model {registered.name} 1 ({proxy.url})" in listed, listed


def test_copy_to_a_directory_that_is_not_empty_is_refused(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("x")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "other").write_text("y")
    with pytest.raises(BadInput, match="not an empty directory"):
        copy_tree(src, tmp_path / "taken")
    assert copy_tree(src, tmp_path / "new") == tmp_path / "new"
    assert (tmp_path / "new" / "sub" / "f.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "src", "taken"]  # no .part
