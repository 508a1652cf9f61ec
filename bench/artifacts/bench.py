"""Artifact benchmark: plugin vs raw NGAS (curl) vs MLflow's proxied local store.

Everything runs side by side in one invocation on this machine, and results are
printed as ratios (absolute seconds are shown for context only):

1. upload + download of one SIZE MiB file (default 256):
   raw NGAS over curl, the NGAS plugin (NgasArtifactRepository), and MLflow's
   default proxied local artifact store (``mlflow server --artifacts-destination DIR``);
2. peak RSS growth of the plugin process above its baseline after ``import mlflow``
   (measured for SIZE and SIZE/4 to show it does not depend on the size);
3. cache: warm read through ReadCache vs a plain read of a local file;
4. HTTP requests made for cached files in ``offline`` and ``bad`` modes (must be 0).

NGAS is ``$NGAS_URL`` if set (e.g. a real NGAS), else the protocol double from
tests/ngas_double started as a subprocess. Targets (from issue 6): plugin
throughput >= 90 % of raw NGAS, RSS growth < 50 MB and size-independent, warm
read within 10 % of a plain read, 0 requests in offline/bad modes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

TOP = Path(__file__).resolve().parents[2]
BIN = Path(os.path.abspath(sys.executable)).parent
SIZE_MB = int(os.environ.get("BENCH_SIZE_MB", "256"))

PLUGIN_SCRIPT = r"""
import json, os, sys, time
import mlflow  # the baseline includes mlflow, as the issue asks
from mlpipe.storage.mlflow_ngas import NgasArtifactRepository

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)

uri, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
repo = NgasArtifactRepository(uri)
repo.cache  # config + cache index created before the baseline
open("/proc/self/clear_refs", "w").write("5")  # reset the peak-RSS mark
base = rss("VmRSS")
t0 = time.perf_counter()
repo.log_artifact(path)
t1 = time.perf_counter()
os.makedirs(out, exist_ok=True)
repo.download_artifacts(os.path.basename(path), out)
t2 = time.perf_counter()
print(json.dumps({"up": t1 - t0, "down": t2 - t1, "base": base, "peak": rss("VmHWM")}))
"""

MLFLOW_SCRIPT = r"""
import json, os, sys, time
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
path, out = sys.argv[2], sys.argv[3]
mlflow.set_experiment("bench")
with mlflow.start_run() as run:
    t0 = time.perf_counter()
    mlflow.log_artifact(path)
    t1 = time.perf_counter()
os.makedirs(out, exist_ok=True)
t2 = time.perf_counter()
mlflow.artifacts.download_artifacts(
    run_id=run.info.run_id, artifact_path=os.path.basename(path), dst_path=out)
t3 = time.perf_counter()
print(json.dumps({"up": t1 - t0, "down": t3 - t2}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(check, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"bench: {what} did not become ready in {timeout:.0f}s")


def start_double(tmp: Path) -> tuple[str, subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(TOP / "tests")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ngas_double", "--root", str(tmp / "ngas")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "READY":
        raise SystemExit("bench: NGAS double did not start")
    return line[1], proc


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def best_read(path: Path, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        with open(path, "rb") as fh:
            while fh.read(4 * 1024 * 1024):
                pass
        best = min(best, time.perf_counter() - t0)
    return best


def run_plugin(url: str, path: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    uri = f"ngas://{url.split('://', 1)[1]}/bench/plugin-{uuid.uuid4().hex[:8]}"
    res = subprocess.run(
        [sys.executable, "-c", PLUGIN_SCRIPT, uri, str(path), str(out)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        url = os.environ.get("NGAS_URL", "")
        if not url:
            url, p = start_double(tmp)
            procs.append(p)
        kind = "NGAS at " + url + (" (protocol double)" if procs else "")
        env = {
            **os.environ,
            "MLPIPE_CONFIG": str(tmp / "mlpipe.toml"),
            "MLPIPE_NGAS_URL": url,
            "MLPIPE_CACHE_DIR": str(tmp / "cache"),
            "MLPIPE_CACHE_MODE": "good",
            "MLPIPE_CACHE_MAX_SIZE": "4G",
        }
        (tmp / "mlpipe.toml").write_text("")
        big = tmp / "artifact.bin"
        small = tmp / "artifact-small.bin"
        with open(big, "wb") as fh:
            for _ in range(SIZE_MB):
                fh.write(os.urandom(1024 * 1024))
        with open(small, "wb") as fh:
            for _ in range(max(SIZE_MB // 4, 1)):
                fh.write(os.urandom(1024 * 1024))
        print(f"bench: {SIZE_MB} MiB artifact; {kind}; results are best-effort single runs")

        # 1a. raw NGAS over curl
        fid = f"bench/raw-{uuid.uuid4().hex[:8]}"
        raw_up = timed(
            [
                "curl",
                "-sS",
                "-f",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                "-T",
                str(big),
                "-H",
                "Content-Type: application/octet-stream",
                "-H",
                "Expect:",
                f"{url}/QARCHIVE?file_id={fid}&filename={fid}&mime_type=application/octet-stream",
            ]
        )
        raw_down = timed(
            ["curl", "-sS", "-f", "-o", str(tmp / "raw.out"), f"{url}/RETRIEVE?file_id={fid}"]
        )

        # 1b. the plugin (also gives RSS); 2. RSS for a quarter of the size
        plug = run_plugin(url, big, tmp / "plug-out", env)
        plug_small = run_plugin(url, small, tmp / "plug-out-small", env)
        assert (tmp / "plug-out" / big.name).stat().st_size == big.stat().st_size

        # 1c. MLflow's default proxied local artifact store
        port = free_port()
        mlflow_log = open(tmp / "mlflow.log", "wb")  # noqa: SIM115 - lives as long as the server
        mproc = subprocess.Popen(
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
                str(tmp / "mlartifacts"),
            ],
            cwd=tmp,
            env=env,
            stdout=mlflow_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(mproc)
        murl = f"http://127.0.0.1:{port}"
        poll(lambda: requests.get(f"{murl}/health", timeout=5).ok, "mlflow server")
        res = subprocess.run(
            [sys.executable, "-c", MLFLOW_SCRIPT, murl, str(big), str(tmp / "mlflow-out")],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        local = json.loads(res.stdout.strip().splitlines()[-1])

        # 3. + 4. the cache
        sys.path.insert(0, str(TOP / "tasks_py"))
        os.environ.update(env)
        from mlpipe.storage import ReadCache

        plain = best_read(big)
        cache = ReadCache.from_config(mode="bad")
        cached_path = cache.fetch(fid)  # first fetch downloads
        warm_bad = best_read_fetch(cache, fid)
        good = ReadCache.from_config(mode="good")
        warm_good = best_read_fetch(good, fid)
        off = ReadCache.from_config(mode="offline")
        bad = ReadCache.from_config(mode="bad")
        for _ in range(10):
            off.fetch(fid)
            bad.fetch(fid)
        assert cached_path.exists()

        mb = SIZE_MB * 1.048576
        print("\n== throughput (MB/s; ratio = plugin / other) ==")
        rows = [
            ("upload", raw_up, plug["up"], local["up"]),
            ("download (cold cache)", raw_down, plug["down"], local["down"]),
        ]
        print(
            f"{'':24}{'raw NGAS curl':>16}{'plugin':>10}{'MLflow local':>14}"
            f"{'plugin/raw':>12}{'plugin/local':>14}"
        )
        for name, r, p, m in rows:
            print(
                f"{name:24}{mb / r:>16.0f}{mb / p:>10.0f}{mb / m:>14.0f}"
                f"{r / p:>11.0%}{m / p:>14.0%}"
            )
        tot_r, tot_p = raw_up + raw_down, plug["up"] + plug["down"]
        tot_m = local["up"] + local["down"]
        print(
            f"{'upload+download':24}{2 * mb / tot_r:>16.0f}{2 * mb / tot_p:>10.0f}"
            f"{2 * mb / tot_m:>14.0f}{tot_r / tot_p:>11.0%}{tot_m / tot_p:>14.0%}"
            "   target plugin/raw >= 90%"
        )

        g_big = (plug["peak"] - plug["base"]) / 1e6
        g_small = (plug_small["peak"] - plug_small["base"]) / 1e6
        print("\n== plugin process memory (peak RSS above post-import-mlflow baseline) ==")
        print(
            f"baseline {plug['base'] / 1e6:.0f} MB; growth {g_big:.1f} MB for {SIZE_MB} MiB, "
            f"{g_small:.1f} MB for {max(SIZE_MB // 4, 1)} MiB   target < 50 MB, size-independent"
        )

        print("\n== cache (warm read = fetch + read the whole file; best of 5) ==")
        print(
            f"plain local read {mb / plain:.0f} MB/s; warm read bad mode {mb / warm_bad:.0f} MB/s "
            f"= {plain / warm_bad:.0%} of plain; good mode (1 staleness request) "
            f"{mb / warm_good:.0f} MB/s = {plain / warm_good:.0%}   target >= 90%"
        )
        print(
            f"requests for 10 cached reads: offline {off.network_requests}, "
            f"bad {bad.network_requests}   target 0"
        )
        return 0
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def best_read_fetch(cache, fid: str, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        with open(cache.fetch(fid), "rb") as fh:
            while fh.read(4 * 1024 * 1024):
                pass
        best = min(best, time.perf_counter() - t0)
    return best


if __name__ == "__main__":
    sys.exit(main())
