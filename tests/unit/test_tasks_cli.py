"""The tasks as ``mlpipe <task>``, ``python -m mlpipe.tasks.<task>`` and config: exit codes."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pytest

from mlpipe.cli import main

VENV_BIN = Path(os.path.abspath(sys.executable)).parent


def mlpipe(*args: str, module: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``mlpipe`` (or ``python -m module``) in a new process."""
    cmd = [sys.executable, "-m", module] if module else [str(VENV_BIN / "mlpipe")]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=dict(os.environ), check=False
    )


@pytest.fixture
def cli(capsys):
    """``mlpipe ARGS`` in this process (same code as the script, no interpreter start-up)."""

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        code = main(list(args))
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["mlpipe", *args], code, out.out, out.err)

    return call


@pytest.fixture
def http_dir(weather_raw: Path):
    """The raw CSVs served over HTTP (URL sources)."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(weather_raw))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_config_show_has_pipeline_and_model_sections(monkeypatch):
    monkeypatch.setenv("MLPIPE_MODEL_NAME", "site-model")
    monkeypatch.setenv("MLPIPE_MLFLOW_TRACKING_TOKEN", "s3cr3t")
    proc = mlpipe("config", "show")
    assert proc.returncode == 0, proc.stderr
    assert "[pipeline]" in proc.stdout and 'name = "site-model"' in proc.stdout
    assert 'plugin = "weather"' in proc.stdout and "s3cr3t" not in proc.stdout
    monkeypatch.setenv("MLPIPE_PIPELINE_MAX_WORKERS", "0")
    proc = mlpipe("config", "show")
    assert proc.returncode == 2 and "max_workers" in proc.stderr


def test_script_and_cli_load_raw_from_globs_and_urls(task_env, weather_raw, http_dir, tmp_path):
    prefix = task_env["MLPIPE_PIPELINE_DATA_PREFIX"]
    out = tmp_path / "outputs.json"
    proc = mlpipe(
        str(weather_raw / "seattle-201[23].csv"),
        f"{http_dir}/seattle-2015.csv",
        "--outputs-json",
        str(out),
        module="mlpipe.tasks.load_raw",
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert [f["id"].rsplit("/", 1)[1] for f in record["outputs"]["raw"]] == [
        "seattle-2012.csv",
        "seattle-2013.csv",
        "seattle-2015.csv",
    ]
    mlflow.set_tracking_uri(task_env["MLPIPE_MLFLOW_TRACKING_URI"])
    run = mlflow.MlflowClient().get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["mlpipe.task"] == "load-raw"
    # the same task through the one CLI, same files: nothing new is archived
    proc = mlpipe("load-raw", str(weather_raw / "seattle-2012.csv"), "--outputs-json", str(out))
    assert proc.returncode == 0, proc.stderr
    (again,) = json.loads(out.read_text())["outputs"]["raw"]
    assert again == record["outputs"]["raw"][0]  # same id, same version
    assert f"{prefix}/raw/" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["load-raw", "/nonexistent/raw.csv"], "raw source /nonexistent/raw.csv: no such file"),
        (["preprocess", "nothing/here/"], "no NGAS files below prefix 'nothing/here/'"),
        (["train", "missing/file.csv"], "NGAS file 'missing/file.csv' is not in"),
        (["promote", "some-model", "latest"], "version 'latest' must be a number"),
        (["train", "x/", "-p", "alpha"], "-p 'alpha': expected KEY=VALUE"),
    ],
)
def test_bad_input_exits_2_naming_it(task_env, cli, args, message):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_only_corrupt_files_and_unknown_plugin(task_env, cli, tmp_path, monkeypatch):
    bad = tmp_path / "bad.csv"
    bad.write_text("this is not\x00 weather\n")
    proc = cli("load-raw", str(bad))
    assert proc.returncode == 2
    assert "all 1 raw file(s) are unusable and were quarantined under" in proc.stderr
    monkeypatch.setenv("MLPIPE_MODEL_PLUGIN", "nosuch")
    proc = cli("load-raw", str(bad))
    assert proc.returncode == 2 and "no model plugin named 'nosuch'; known: weather" in proc.stderr


def test_missing_model_and_refused_promotion_exit_codes(task_env, cli, weather_raw):
    from mlpipe.tasks.context import TaskContext
    from mlpipe.tasks.registry import run_task

    ctx = TaskContext.from_config()
    raw = run_task("load-raw", {}, {"sources": [str(weather_raw / "seattle-2014.csv")]}, ctx=ctx)
    pre = run_task("preprocess", {"raw": raw.outputs["raw"]}, {}, ctx=ctx)
    data_id = pre.outputs["preprocessed"][0]["id"]
    name = task_env["MLPIPE_MODEL_NAME"]
    proc = cli("infer", data_id, "--model", f"models:/{name}@production")
    assert proc.returncode == 2 and f"no registered model '{name}'" in proc.stderr
    run_task("train", {"data": pre.outputs["preprocessed"]}, {}, ctx=ctx)
    run_task("train", {"data": pre.outputs["preprocessed"]}, {"alpha": 80}, ctx=ctx)
    assert cli("promote", name, "1").returncode == 0
    proc = cli("promote", name, "2", "--if-better", "rmse")
    assert proc.returncode == 1 and "refused" in proc.stderr and "stays at version 1" in proc.stderr
    proc = cli("promote", name, "2", "--if-better", "accuracy")
    assert proc.returncode == 2 and "reports mae, r2, rmse" in proc.stderr
    proc = cli("infer", data_id, "--model", f"models:/{name}/7")
    assert proc.returncode == 2 and "has no version 7 (versions 1, 2; aliases production->1)" in (
        proc.stderr
    )
