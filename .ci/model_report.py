#!/usr/bin/env python3
"""The model comparison of a pull request: main's example model against the PR's.

    python3 .ci/model_report.py BASE_TREE OUT_DIR

BASE_TREE is a checkout of the base revision (the pull request's target), this
checkout is the head. Each revision's mlpipe is installed into a venv of its own
(``tasks_py[ml]``, pinned by that revision's ``tests/constraints.txt``), or taken
from ``MLPIPE_REPORT_BASE_BIN`` / ``MLPIPE_REPORT_HEAD_BIN`` (a venv's bin folder).
On loopback it starts the NGAS double (``tests/ngas_double``) and an MLflow server
(sqlite, local artifacts), runs the base revision's example pipeline
(``tasks_py/examples/weather/pipeline.yaml``: the version it promotes is the
champion), then the head's, in an experiment of its own (so nothing is skipped as
unchanged: the version it registers is the challenger), and writes
``mlpipe compare CHAMPION CHALLENGER --format markdown`` to OUT_DIR/report.md with
the plots beside it. Uses no credentials and contacts nothing but the package index.
Exit 0 with the report written, else 1 with the reason (and the servers' logs).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

HEAD = Path(__file__).resolve().parents[1]
EXAMPLE = Path("tasks_py/examples/weather")
MODEL = "seattle-weather"
READY_SECONDS = 120


def log(message: str) -> None:
    print(f"model-report: {message}", file=sys.stderr, flush=True)


def venv(tree: Path, work: Path, role: str) -> Path:
    """A venv with ``tree``'s mlpipe[ml] (or the one named by MLPIPE_REPORT_<ROLE>_BIN)."""
    given = os.environ.get(f"MLPIPE_REPORT_{role.upper()}_BIN")
    if given:
        return Path(given)
    env_dir = work / f"venv-{role}"
    log(f"installing the {role} revision's mlpipe[ml] into {env_dir}")
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    pip = [str(env_dir / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    constraints = tree / "tests" / "constraints.txt"
    subprocess.run(
        [*pip, "--no-compile", "-c", str(constraints), f"{tree / 'tasks_py'}[ml]"], check=True
    )
    return env_dir / "bin"


def wait_for(
    what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], logfile: Path
) -> None:
    """Poll ``ready()`` until true; fail when ``proc`` exits or after READY_SECONDS."""
    deadline = time.monotonic() + READY_SECONDS
    delay = 0.1
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited ({proc.returncode}):\n{logfile.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(delay)  # the poll interval; readiness is what ready() says
        delay = min(delay * 1.5, 1.0)
    raise SystemExit(f"{what} not ready after {READY_SECONDS}s:\n{logfile.read_text()[-3000:]}")


def start(cmd: list[str], logfile: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, stdout=logfile.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def example(tree: Path, work: Path, role: str) -> Path:
    """``tree``'s example pipeline in a folder of its own, experiment ``ci-<role>``."""
    folder = work / f"example-{role}"
    shutil.copytree(tree / EXAMPLE, folder)
    path = folder / "pipeline.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("experiment:"):
            lines[i] = f"experiment: ci-{role}\n"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def registry(bin_dir: Path, env: dict[str, str], code: str) -> str:
    """Run ``code`` (printing one line) with ``bin_dir``'s Python, MLflow's client ``c``."""
    prelude = (
        "import mlflow, os\nc = mlflow.MlflowClient(os.environ['MLPIPE_MLFLOW_TRACKING_URI'])\n"
    )
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", prelude + code],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    base, out = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    if not (base / EXAMPLE / "pipeline.yaml").is_file():
        log(f"{base} has no {EXAMPLE}/pipeline.yaml: not a checkout of the base revision")
        return 1
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mlpipe-model-report-"))
    base_bin, head_bin = venv(base, work, "base"), venv(HEAD, work, "head")
    (work / "mlpipe.toml").write_text("# empty: settings come from the environment\n")
    env = {
        **os.environ,
        "MLPIPE_CONFIG": str(work / "mlpipe.toml"),
        "MLPIPE_CACHE_DIR": str(work / "cache"),
        "MLPIPE_MODEL_NAME": MODEL,
        "MLPIPE_PIPELINE_DATA_PREFIX": "ci/weather",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ngas_log = work / "ngas.log"
        ngas = start(
            [str(head_bin / "python"), "-m", "ngas_double", "--root", str(work / "ngas")],
            ngas_log,
            {**env, "PYTHONPATH": str(HEAD / "tests")},
        )
        procs.append(ngas)

        def ngas_url() -> str:
            text = ngas_log.read_text()
            return text.split("READY ", 1)[1].split()[0] if "READY " in text else ""

        wait_for("the NGAS double", lambda: bool(ngas_url()), ngas, ngas_log)
        env["MLPIPE_NGAS_URL"] = ngas_url()
        port = free_port()
        mlflow_log = work / "mlflow.log"
        mlflow_url = f"http://127.0.0.1:{port}"
        server = [str(head_bin / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
        server += ["--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}", "--workers", "1"]
        server += ["--artifacts-destination", str(work / "artifacts")]
        procs.append(start(server, mlflow_log, env))

        def healthy() -> bool:
            with urllib.request.urlopen(f"{mlflow_url}/health", timeout=5) as resp:
                return bool(resp.status == 200)

        wait_for("the MLflow server", healthy, procs[-1], mlflow_log)
        env["MLPIPE_MLFLOW_TRACKING_URI"] = mlflow_url
        champion = ""
        for role, bin_dir, tree in (("base", base_bin, base), ("head", head_bin, HEAD)):
            pipeline = example(tree, work, role)
            log(f"running the {role} revision's example pipeline")
            subprocess.run(
                [str(bin_dir / "mlpipe"), "pipeline", "run", str(pipeline), "--executor", "local"],
                env=env,
                check=True,
                cwd=pipeline.parent,
            )
            if role == "base":
                champion = registry(
                    bin_dir, env, f"print(c.get_registered_model({MODEL!r}).aliases['production'])"
                )
        newest = registry(
            head_bin,
            env,
            f"print(max(int(v.version) for v in c.search_model_versions(\"name='{MODEL}'\")))",
        )
        report = out / "report.md"
        if newest == champion:
            report.write_text(
                f"## Model comparison\n\nThe pull request's pipeline registered no new version "
                f"of {MODEL} (version {champion}, main's, is unchanged).\n"
            )
        else:
            subprocess.run(
                [str(head_bin / "mlpipe"), "compare", f"{MODEL}/{champion}", f"{MODEL}/{newest}"]
                + ["--format", "markdown", "-o", str(report)],
                env=env,
                check=True,
            )
        log(f"wrote {report}: version {champion} (base) against {newest} (head)")
        return 0
    except subprocess.CalledProcessError as exc:
        log(f"{' '.join(map(str, exc.cmd))[:300]} failed with exit {exc.returncode}")
        for name in ("ngas.log", "mlflow.log"):
            tail = (
                (work / name).read_text(errors="replace")[-2000:] if (work / name).exists() else ""
            )
            log(f"end of {name}:\n{tail}")
        return 1
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
