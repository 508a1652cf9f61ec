"""Model-load benchmark: a registered version loaded through mlpipe's read cache, cold vs warm.

Side by side in one invocation on this machine, printed as ratios (absolute
figures for context only). A real ``mlflow server`` proxies artifacts to NGAS
(``--artifacts-destination ngas://...``: the deployed configuration, the
protocol double from tests/ngas_double, or ``$NGAS_URL``), behind an HTTP proxy
that counts every request the loading process makes. The version is the
weather example fitted on the committed 2012-2013 data.

1. MLflow's own load, ``mlflow.pyfunc.load_model("models:/NAME/1")`` (no cache:
   the whole model over HTTP each time);
2. the first load through the cache (``ModelCache.version`` + pyfunc load of the
   cached directory): downloads once;
3. the second load, from a fresh cache object on the same directory (what the
   next process sees): requests counted, target 0;
4. the alias ``NAME@production`` in ``good`` mode (target 1 request) and ``bad``
   mode (target 0);
5. warm cached load vs loading a plain local copy of the same directory
   (target >= 90 %).

Rounds: ``BENCH_MODEL_ROUNDS`` (default 5), best of each.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

TOP = Path(__file__).resolve().parents[2]
BIN = Path(os.path.abspath(sys.executable)).parent
RAW = TOP / "tasks_py" / "examples" / "weather" / "raw"
ROUNDS = int(os.environ.get("BENCH_MODEL_ROUNDS", "5"))
NAME = "bench-model-cache"
PROCS: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {url} exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)  # poll interval
    raise SystemExit(f"bench: {url} did not become ready in {timeout:.0f}s")


def start_ngas(tmp: Path, env: dict[str, str]) -> str:
    if os.environ.get("NGAS_URL"):
        return os.environ["NGAS_URL"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ngas_double", "--root", str(tmp / "ngas")],
        stdout=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONPATH": str(TOP / "tests")},
    )
    PROCS.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "READY":
        raise SystemExit("bench: NGAS double did not start")
    return line[1]


def start_mlflow(tmp: Path, env: dict[str, str], ngas_url: str) -> str:
    port = free_port()
    log = tmp / "mlflow.log"
    dest = f"ngas://{ngas_url.split('://', 1)[1]}/bench-models"
    proc = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp / 'mlflow.db'}",
            "--artifacts-destination",
            dest,
        ],
        cwd=tmp,
        env={**env, "MLPIPE_CACHE_DIR": str(tmp / "server-cache")},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    PROCS.append(proc)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/health", proc, log)
    return url


def register(url: str) -> None:
    import mlflow
    import pandas as pd

    from mlpipe.models.weather import WeatherModel

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("bench-models")
    plugin = WeatherModel()
    frames = [plugin.preprocess(RAW / f"seattle-{y}.csv", {"lags": 1}) for y in (2012, 2013)]
    data = pd.concat(frames, ignore_index=True)
    with mlflow.start_run():
        version = plugin.log_model(plugin.train(data, {}), data, NAME)
    mlflow.MlflowClient().set_registered_model_alias(NAME, "production", version)


def best(func: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="mlpipe-bench-models-"))
    (tmp / "mlpipe.toml").write_text("")
    env = {
        **os.environ,
        "MLPIPE_CONFIG": str(tmp / "mlpipe.toml"),
        "MLPIPE_CACHE_DIR": str(tmp / "cache"),
        "MLPIPE_CACHE_MODE": "good",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "GIT_PYTHON_REFRESH": "quiet",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith(("MLPIPE_", "MLFLOW_", "GIT"))})
    sys.path.insert(0, str(TOP / "tests"))
    from http_faults import FaultyProxy  # the tests' counting proxy

    try:
        ngas_url = start_ngas(tmp, env)
        upstream = start_mlflow(tmp, env, ngas_url)
        register(upstream)
        with FaultyProxy(upstream) as proxy:
            return measure(proxy, tmp, ngas_url)
    finally:
        for proc in PROCS:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def measure(proxy: object, tmp: Path, ngas_url: str) -> int:
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient

    from mlpipe.storage import ReadCache
    from mlpipe.tasks.model_cache import ModelCache

    seen: list[tuple[str, str]] = proxy.seen  # type: ignore[attr-defined]
    mlflow.set_tracking_uri(proxy.url)  # type: ignore[attr-defined]
    cache_dir = tmp / "cache"

    def cache(mode: str = "good") -> ModelCache:
        return ModelCache(ReadCache(cache_dir, mode=mode), MlflowClient(proxy.url))  # type: ignore[attr-defined]

    def counted(func: Callable[[], object]) -> tuple[float, int, int]:
        seen.clear()
        t0 = time.perf_counter()
        func()
        took = time.perf_counter() - t0
        return took, len(seen), sum(1 for _, p in seen if "/mlflow-artifacts/" in p)

    uri = f"models:/{NAME}/1"
    plain_t, plain_n, plain_a = counted(lambda: mlflow.pyfunc.load_model(uri))
    plain_best = best(lambda: mlflow.pyfunc.load_model(uri))
    cold_t, cold_n, cold_a = counted(
        lambda: mlflow.pyfunc.load_model(str(cache().version(NAME, "1").path))
    )
    warm_t, warm_n, warm_a = counted(
        lambda: mlflow.pyfunc.load_model(str(cache().version(NAME, "1").path))
    )
    good_t, good_n, good_a = counted(lambda: cache("good").get(f"{NAME}@production"))
    bad_t, bad_n, bad_a = counted(lambda: cache("bad").get(f"{NAME}@production"))

    warm = cache()
    cached_dir = warm.version(NAME, "1").path
    local = tmp / "local-copy"
    shutil.copytree(cached_dir, local)
    size = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    seen.clear()
    warm_best = local_best = float("inf")
    for _ in range(ROUNDS):  # alternating, so that drift on a shared machine hits both
        warm_best = min(
            warm_best, best(lambda: mlflow.pyfunc.load_model(str(warm.version(NAME, "1").path)), 1)
        )
        local_best = min(local_best, best(lambda: mlflow.pyfunc.load_model(str(local)), 1))
    warm_rounds_requests = len(seen)

    print(
        f"bench: model {NAME} version 1 ({size / 1024:.0f} KiB, "
        f"{sum(1 for p in local.rglob('*') if p.is_file())} files); MLflow proxying to "
        f"NGAS at {ngas_url}; best of {ROUNDS}; results are best-effort single runs"
    )
    print("\n== loads (requests counted by a proxy in front of MLflow) ==")
    print(f"{'':34}{'seconds':>9}{'requests':>10}{'artifact':>10}")
    rows = [
        ("MLflow models:/ (no cache)", plain_t, plain_n, plain_a),
        ("through the cache, first load", cold_t, cold_n, cold_a),
        ("through the cache, second load", warm_t, warm_n, warm_a),
        ("alias @production, good mode", good_t, good_n, good_a),
        ("alias @production, bad mode", bad_t, bad_n, bad_a),
    ]
    for label, t, n, a in rows:
        print(f"{label:34}{t:>9.3f}{n:>10}{a:>10}")
    print(
        f"second load: {warm_n} request(s), {warm_a} artifact request(s)   target 0; "
        f"alias good {good_n} (target 1), bad {bad_n} (target 0)"
    )
    print("\n== warm cached load vs a plain local directory (pyfunc load; best of rounds) ==")
    print(
        f"MLflow models:/ {plain_best:.3f}s; cached {warm_best:.3f}s; local directory "
        f"{local_best:.3f}s; cached = {local_best / warm_best:.0%} of local "
        f"({warm_rounds_requests} requests in {2 * ROUNDS} loads)   target >= 90%; "
        f"cached vs models:/ {plain_best / warm_best:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
