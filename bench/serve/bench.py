"""Serving benchmark: ``mlpipe serve`` vs ``mlflow models serve`` of the same version.

Side by side in one invocation on this machine (loopback), printed as ratios
(absolute figures for context only):

1. latency of a single-row request (``dataframe_split``, one keep-alive
   connection, requests one after another): p50 and p99 over
   ``BENCH_SERVE_REQUESTS`` requests (default 1000, after 50 warm-up ones);
2. throughput under a bounded concurrent load: ``BENCH_SERVE_LOAD`` requests
   (default 2000) over ``BENCH_SERVE_CONCURRENCY`` keep-alive connections
   (default 8) at once;
3. the model alone: ``predict`` of the loaded pyfunc model on the same row, in
   this process (what HTTP, parsing and encoding add).

Both servers run one worker process with the model version registered here
(the weather example trained on the committed 2012-2013 data) on a real MLflow
server (SQLite, local artifacts). The rounds alternate between the servers so
that drift on a shared machine hits both. Target (issue 15 item 6): mlpipe's
figures within a small factor of MLflow's own server (it adds the version
header and the alias polling, nothing on the request path).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

TOP = Path(__file__).resolve().parents[2]
BIN = Path(os.path.abspath(sys.executable)).parent
RAW = TOP / "tasks_py" / "examples" / "weather" / "raw"
REQUESTS = int(os.environ.get("BENCH_SERVE_REQUESTS", "1000"))
LOAD = int(os.environ.get("BENCH_SERVE_LOAD", "2000"))
CONCURRENCY = int(os.environ.get("BENCH_SERVE_CONCURRENCY", "8"))
ROUNDS = 2
WARMUP = 50
NAME = "bench-weather"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(check, what: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"bench: {what} exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            if check():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.1)  # poll interval
    raise SystemExit(f"bench: {what} did not become ready in {timeout:.0f}s")


PROCS: list[subprocess.Popen] = []  # stopped at the end, whatever happened


def start(
    cmd: list[str], env: dict[str, str], log: Path, ready: str, what: str
) -> subprocess.Popen:
    # its own process group: `mlflow models serve` runs its server as a child process
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    PROCS.append(proc)
    poll(lambda: requests.get(ready, timeout=5).status_code == 200, what, proc, log)
    return proc


def register_version(tracking_uri: str):
    """Version 1 of NAME (the weather example), alias production; the features of one row."""
    import mlflow

    from mlpipe.models.weather import WeatherModel

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("bench-serve")
    plugin = WeatherModel()
    import pandas as pd

    frames = [plugin.preprocess(RAW / f"seattle-{y}.csv", {"lags": 1}) for y in (2012, 2013)]
    data = pd.concat(frames, ignore_index=True)
    model = plugin.train(data, {})
    with mlflow.start_run():
        version = plugin.log_model(model, data, NAME)
    mlflow.MlflowClient().set_registered_model_alias(NAME, "production", version)
    test = plugin.preprocess(RAW / "seattle-2015.csv", {"lags": 1})
    return version, test[plugin.feature_columns(test)].head(1)


def latencies(port: int, body: bytes, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    out = []
    for i in range(WARMUP + n):
        t0 = time.perf_counter()
        conn.request("POST", "/invocations", body, headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"bench: HTTP {resp.status} from port {port}")
        if i >= WARMUP:
            out.append(time.perf_counter() - t0)
    conn.close()
    return out


def throughput(port: int, body: bytes, total: int, concurrency: int) -> float:
    """Requests per second for ``total`` requests over ``concurrency`` connections."""
    headers = {"Content-Type": "application/json"}
    counts = [
        total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)
    ]
    failures: list[str] = []
    gate = threading.Barrier(concurrency + 1)

    def worker(count: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        gate.wait()
        for _ in range(count):
            conn.request("POST", "/invocations", body, headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                failures.append(str(resp.status))
        conn.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in counts]
    for t in threads:
        t.start()
    gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise SystemExit(f"bench: {len(failures)} failed requests on port {port}")
    return total / elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="mlpipe-bench-serve-"))
    try:
        (tmp / "mlpipe.toml").write_text("")
        env = {
            **os.environ,
            "MLPIPE_CONFIG": str(tmp / "mlpipe.toml"),
            "MLPIPE_CACHE_DIR": str(tmp / "cache"),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "GIT_PYTHON_REFRESH": "quiet",
        }
        os.environ.update(
            {
                k: env[k]
                for k in (
                    "MLPIPE_CONFIG",
                    "MLPIPE_CACHE_DIR",
                    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
                )
            }
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        start(
            [
                str(BIN / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                f"sqlite:///{tmp / 'mlflow.db'}",
                "--artifacts-destination",
                str(tmp / "artifacts"),
                "--workers",
                "1",
            ],
            {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            tmp / "mlflow.log",
            f"{url}/health",
            "mlflow server",
        )
        env["MLFLOW_TRACKING_URI"] = env["MLPIPE_MLFLOW_TRACKING_URI"] = url
        version, row = register_version(url)
        body = json.dumps(
            {"dataframe_split": json.loads(row.to_json(orient="split", index=False))}
        ).encode()

        ours, theirs = free_port(), free_port()
        start(
            [str(BIN / "mlpipe"), "serve", NAME, "--port", str(ours)],
            env,
            tmp / "mlpipe-serve.log",
            f"http://127.0.0.1:{ours}/health",
            "mlpipe serve",
        )
        start(
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{NAME}/{version}",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(theirs),
                "--workers",
                "1",
            ],
            env,
            tmp / "mlflow-serve.log",
            f"http://127.0.0.1:{theirs}/ping",
            "mlflow models serve",
        )
        got = requests.post(
            f"http://127.0.0.1:{ours}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        ref = requests.post(
            f"http://127.0.0.1:{theirs}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert got.json() == ref.json(), (got.text, ref.text)  # the same answer
        assert got.headers["X-Mlpipe-Model-Version"] == str(version)

        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")
        raw: list[float] = []
        for i in range(WARMUP + REQUESTS):
            t0 = time.perf_counter()
            model.predict(row)
            if i >= WARMUP:
                raw.append(time.perf_counter() - t0)

        lat = {"mlpipe": [], "mlflow": []}
        rps = {"mlpipe": [], "mlflow": []}
        for _ in range(ROUNDS):
            for who, p in (("mlpipe", ours), ("mlflow", theirs)):
                lat[who].extend(latencies(p, body, REQUESTS // ROUNDS))
                rps[who].append(throughput(p, body, LOAD // ROUNDS, CONCURRENCY))

        cores = os.cpu_count()
        print(
            f"bench serve: model {NAME} version {version}, single-row dataframe_split, loopback, "
            f"{cores} core(s); latency over {len(lat['mlpipe'])} sequential requests, throughput "
            f"over {LOAD} requests at concurrency {CONCURRENCY}; {ROUNDS} alternating rounds"
        )
        ms = 1000.0
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            a, b = pct(lat["mlpipe"], q), pct(lat["mlflow"], q)
            print(
                f"  latency {label}: mlpipe serve {a * ms:.2f} ms, mlflow models serve "
                f"{b * ms:.2f} ms -> ratio {a / b:.2f} (lower is better)"
            )
        a, b = statistics.median(rps["mlpipe"]), statistics.median(rps["mlflow"])
        print(
            f"  throughput: mlpipe serve {a:.0f} req/s, mlflow models serve {b:.0f} req/s "
            f"-> ratio {a / b:.2f} (higher is better)"
        )
        r50 = pct(raw, 0.5)
        print(
            f"  the model alone (pyfunc predict, in process): p50 {r50 * ms:.2f} ms -> "
            f"mlpipe serve p50 / predict p50 = {pct(lat['mlpipe'], 0.5) / r50:.1f}"
        )
        return 0
    finally:
        for p in reversed(PROCS):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
