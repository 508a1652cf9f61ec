"""load-raw benchmark: ``mlpipe load-raw`` of many small raw files vs a sequential curl loop.

Side by side in one run against the same NGAS, printed as ratios (absolute times for
context): ``BENCH_LOAD_FILES`` (default 1000) small raw CSVs of the weather example
(about 1 KiB each) are archived

1. by a shell loop running one ``curl`` QARCHIVE per file, one after another (the floor of a
   sequential client: no Python, no check of what is already stored), as octet-stream: the
   test servers have no text/csv Stream (roles/ngas adds one), and load-raw falls back to
   octet-stream after one refusal per process;
2. by ``mlpipe load-raw DIR`` with ``[ngas] concurrency`` 1, then each of
   ``BENCH_LOAD_CONCURRENCY`` (default "4 8"): every file validated by the model plugin, its
   newest version asked for, then archived; plus the task's MLflow run.

Each contender stores under its own prefix (new ids every time). ``BENCH_ROUNDS`` rounds
(default 3), contenders interleaved in each; the best time of each counts.

Target (issue 16 item 7): load-raw at concurrency 4 at least 2x as fast as the curl loop.

NGAS: as for bench/artifacts (``NGAS_URL``, else a real NGAS built from ``NGAS_SOURCE``,
else the protocol double); MLflow: a local server (bench/models). ``BENCH_JSON=<file>``
also writes the figures as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

TOP = Path(__file__).resolve().parents[2]
BIN = Path(os.path.abspath(sys.executable)).parent
FILES = int(os.environ.get("BENCH_LOAD_FILES", "1000"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_LOAD_CONCURRENCY", "4 8").split()]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TARGET = 2.0


def sibling(name: str) -> ModuleType:
    """bench/<name>/bench.py as a module (its NGAS and MLflow starters)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", TOP / "bench" / name / "bench.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def raw_files(dest: Path) -> int:
    """FILES distinct raw CSVs (the weather example's rows, 10 days each); their total bytes."""
    lines = (TOP / "tasks_py/examples/weather/raw/seattle-2012.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    dest.mkdir()
    total = 0
    for i in range(FILES):
        start = (i * 7) % (len(rows) - 10)
        text = "\n".join([header, *rows[start : start + 10]]) + f"\n# {i}\n"
        total += (dest / f"obs-{i:05d}.csv").write_text(text)
    return total


def curl_loop(ngas_url: str, raw: Path, prefix: str) -> None:
    script = (
        'for f in "$1"/*.csv; do n=${f##*/}; curl -sf -o /dev/null -X POST '
        '-H "Content-Type: application/octet-stream" --data-binary "@$f" '
        '"$2/QARCHIVE?filename=$3-$n&file_id=$3/$n&mime_type=application/octet-stream" '
        "|| exit 1; done"
    )
    subprocess.run(["bash", "-c", script, "curl-loop", str(raw), ngas_url, prefix], check=True)


def load_raw(env: dict[str, str], raw: Path, prefix: str, concurrency: int) -> None:
    subprocess.run(
        [str(BIN / "mlpipe"), "load-raw", str(raw), "--prefix", prefix],
        env={**env, "MLPIPE_NGAS_CONCURRENCY": str(concurrency)},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def timed(func: object, *args: object) -> float:
    start = time.perf_counter()
    func(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    artifacts, models = sibling("artifacts"), sibling("models")
    tmp = Path(tempfile.mkdtemp(prefix="mlpipe-bench-load-raw-"))
    (tmp / "mlpipe.toml").write_text("")
    procs: list[subprocess.Popen] = []
    try:
        ngas_url, what = artifacts.start_ngas(tmp, procs)
        env = {
            **os.environ,
            "MLPIPE_CONFIG": str(tmp / "mlpipe.toml"),
            "MLPIPE_CACHE_DIR": str(tmp / "cache"),
            "MLPIPE_NGAS_URL": ngas_url,
            "MLPIPE_PIPELINE_EXPERIMENT": "bench-load-raw",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "GIT_PYTHON_REFRESH": "quiet",
        }
        env["MLPIPE_MLFLOW_TRACKING_URI"] = models.start_mlflow(tmp, env, ngas_url)
        procs.extend(models.PROCS)
        size = raw_files(tmp / "raw")
        print(f"bench load-raw: NGAS: {what}")
        print(f"bench load-raw: {FILES} files ({size / FILES:.0f} B each), best of {ROUNDS} rounds")
        contenders = {"curl loop": lambda p: curl_loop(ngas_url, tmp / "raw", p)}
        for c in [1, *CONCURRENCY]:
            contenders[f"load-raw c={c}"] = lambda p, c=c: load_raw(env, tmp / "raw", p, c)
        best: dict[str, float] = {}
        failed: set[str] = set()
        for r in range(ROUNDS):
            for i, (name, run) in enumerate(contenders.items()):
                if name in failed:
                    continue
                try:
                    seconds = timed(run, f"bench/r{r}/c{i}")
                except subprocess.CalledProcessError as exc:
                    # e.g. NGAS 12 on SQLite at 8 writers: 400 "cannot commit transaction"
                    failed.add(name)
                    print(f"  round {r + 1}: {name:<16} FAILED (exit {exc.returncode})")
                    continue
                best[name] = min(best.get(name, seconds), seconds)
                print(f"  round {r + 1}: {name:<16} {seconds:7.2f} s", flush=True)
        floor = best["curl loop"]
        print(f"\n{'contender':<16} {'best s':>8} {'files/s':>8}  vs curl loop")
        for name, seconds in best.items():
            print(f"{name:<16} {seconds:8.2f} {FILES / seconds:8.0f}  {floor / seconds:5.2f}x")
        for name in sorted(failed - set(best)):
            print(f"{name:<16}   failed (its error is above)")
        key = "load-raw c=4"
        ok = key not in best or floor / best[key] >= TARGET
        if key in best:
            verdict = "meets" if ok else "MISSES"
            print(f"target: {key} >= {TARGET}x the curl loop: {floor / best[key]:.2f}x ({verdict})")
        if os.environ.get("BENCH_JSON"):
            Path(os.environ["BENCH_JSON"]).write_text(
                json.dumps(
                    {"ngas": what, "files": FILES, "best_seconds": best, "failed": sorted(failed)},
                    indent=2,
                )
            )
        return 0
    finally:
        artifacts.cleanup(procs, tmp)


if __name__ == "__main__":
    sys.exit(main())
