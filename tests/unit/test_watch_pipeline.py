"""``mlpipe watch ftp`` end to end: a real FTP server (pyftpdlib on loopback), the NGAS
double and a real MLflow server. Files are taken once stable, archived once, and the
pipeline runs once per file version, also when the watcher is killed mid-download."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from ftp import FtpServer, start_ftp_server
from mlpipe.config import load_config
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import run_task
from mlpipe.watch.submit import TAG_WATCH_FILE
from mlpipe.watch.watcher import Watcher
from procs import stop_process, wait_until

PIPELINES = Path(__file__).resolve().parents[1] / "ftp"
MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")


@dataclass
class Drop:
    server: FtpServer
    root: Path
    state_dir: Path
    prefix: str
    tracking_uri: str

    def incoming(self, name: str) -> str:
        return f"{self.prefix}/incoming/{name}"


@pytest.fixture
def drop(task_env, tmp_path: Path, monkeypatch) -> Drop:
    root = tmp_path / "drop"
    root.mkdir()
    server = start_ftp_server(root)
    env = {
        "MLPIPE_WATCH_HOST": server.host,
        "MLPIPE_WATCH_PORT": str(server.port),
        "MLPIPE_WATCH_USER": server.user,
        "MLPIPE_WATCH_PASSWORD": server.password,
        "MLPIPE_WATCH_TLS": "false",
        "MLPIPE_WATCH_STATE_DIR": str(tmp_path / "state"),
        "MLPIPE_WATCH_PIPELINE": str(PIPELINES / "preprocess-incoming.yaml"),
        "MLPIPE_WATCH_STABLE_POLLS": "2",
        "MLPIPE_WATCH_POLL_INTERVAL": "0.2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield Drop(
        server,
        root,
        tmp_path / "state",
        task_env["MLPIPE_PIPELINE_DATA_PREFIX"],
        task_env["MLPIPE_MLFLOW_TRACKING_URI"],
    )
    server.stop()


def watcher(lines: list[str]) -> Watcher:
    config = load_config()
    return Watcher(TaskContext.from_config(config), config.watch, say=lines.append)


def finished_runs(drop: Drop, step: str) -> dict[str, int]:
    """NGAS id@version of the watched file -> FINISHED MLflow runs of ``step`` for it."""
    client = mlflow.MlflowClient(drop.tracking_uri)
    counts: dict[str, int] = {}
    for exp in client.search_experiments():
        for run in client.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.`mlpipe.step` = '{step}' and attributes.status = 'FINISHED'",
            max_results=1000,
        ):
            tag = run.data.tags.get(TAG_WATCH_FILE, "")
            if tag.startswith(f"{drop.prefix}/"):
                counts[tag] = counts.get(tag, 0) + 1
    return counts


def ngas_copies(ngas_client, drop: Drop, name: str, tmp_path: Path) -> list[bytes]:
    out = []
    for info in ngas_client.versions(drop.incoming(name)):
        dest = tmp_path / f"got-{name}-{info.version}"
        ngas_client.retrieve(drop.incoming(name), dest, version=info.version)
        out.append(dest.read_bytes())
    return out


def test_growing_file_waits_until_stable_and_a_changed_file_is_a_new_version(
    drop: Drop, weather_raw: Path, ngas_client, tmp_path: Path
):
    full = (weather_raw / "seattle-2015.csv").read_bytes()
    target = drop.root / "obs.csv"
    target.write_bytes(full[:4000])  # an upload in progress
    lines: list[str] = []
    w = watcher(lines)
    assert w.poll().taken == 0
    target.write_bytes(full[:8000])  # still growing
    assert w.poll().taken == 0
    assert "unchanged for 1 of 2 polls: waiting" in lines[-1]
    target.write_bytes(full)
    assert w.poll().taken == 0
    assert ngas_client.versions(drop.incoming("obs.csv")) == []  # nothing taken yet
    result = w.poll()  # same size and mtime as the last poll: stable
    assert result.ok, result.errors
    assert (result.taken, result.done) == (1, ["obs.csv"])
    assert ngas_copies(ngas_client, drop, "obs.csv", tmp_path) == [full]
    assert finished_runs(drop, "preprocess") == {f"{drop.incoming('obs.csv')}@1": 1}

    assert w.poll().taken == 0 and w.poll().taken == 0  # unchanged: never taken again
    changed = (weather_raw / "seattle-2014.csv").read_bytes()
    target.write_bytes(changed)  # same name, new size and mtime
    assert w.poll().taken == 0
    result = w.poll()
    assert result.ok and result.done == ["obs.csv"], result.errors
    assert ngas_copies(ngas_client, drop, "obs.csv", tmp_path) == [full, changed]
    assert finished_runs(drop, "preprocess") == {
        f"{drop.incoming('obs.csv')}@1": 1,
        f"{drop.incoming('obs.csv')}@2": 1,
    }
    states = [r.state for r in w.state.all_files()]
    assert states == ["done", "done"]
    assert any("obs.csv: archived as" in line for line in lines)


def test_re_entry_after_a_crash_before_a_commit_archives_and_runs_nothing_twice(
    drop: Drop, weather_raw: Path, ngas_client, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("MLPIPE_WATCH_STABLE_POLLS", "1")
    data = (weather_raw / "seattle-2013.csv").read_bytes()
    (drop.root / "a.csv").write_bytes(data)
    lines: list[str] = []
    w = watcher(lines)
    assert w.poll().done == ["a.csv"]
    row = w.state.all_files()[0]
    # the crash windows: archived (or the pipeline ran) but the state was not committed
    db = sqlite3.connect(drop.state_dir / "ftp.sqlite")
    with db:
        db.execute("UPDATE files SET state = 'downloaded' WHERE id = ?", (row.id,))
    (drop.state_dir / "ftp.files" / f"{row.id}-a.csv").write_bytes(data)
    result = w.poll()
    assert result.ok and result.done == ["a.csv"], result.errors
    assert "a.csv: already on NGAS as" in "\n".join(lines)
    with db:
        db.execute("UPDATE files SET state = 'submitted' WHERE id = ?", (row.id,))
    assert w.poll().done == ["a.csv"]
    assert ngas_copies(ngas_client, drop, "a.csv", tmp_path) == [data]
    assert finished_runs(drop, "preprocess") == {f"{drop.incoming('a.csv')}@1": 1}


def test_killed_mid_download_every_file_is_processed_once(
    drop: Drop, weather_raw: Path, ngas_client, tmp_path: Path
):
    names = ["seattle-2012.csv", "seattle-2013.csv", "seattle-2014.csv"]
    for name in names:
        (drop.root / name).write_bytes((weather_raw / name).read_bytes())
    env = {**os.environ, "MLPIPE_WATCH_STABLE_POLLS": "1"}
    drop.server.throttle(2000)  # bytes/s: the first file takes about 6 s
    log = tmp_path / "first.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [MLPIPE, "watch", "ftp", "--once"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    parts = drop.state_dir / "ftp.files"

    def transferring() -> bool:
        found = list(parts.glob("*.part")) if parts.is_dir() else []
        return bool(found) and found[0].stat().st_size >= 2000

    wait_until(transferring, "a partial download", proc, log=log)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    (part,) = parts.glob("*.part")
    assert 0 < part.stat().st_size < (weather_raw / names[0]).stat().st_size
    assert ngas_client.list(f"{drop.prefix}/") == []

    drop.server.throttle(0)
    second = subprocess.run(
        [MLPIPE, "watch", "ftp", "--once"], env=env, capture_output=True, text=True, check=False
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{names[0]}: downloaded" in second.stdout and "(resumed at byte " in second.stdout
    lines: list[str] = []
    assert watcher(lines).poll().taken == 0  # and a third poll takes nothing
    for name in names:
        assert ngas_copies(ngas_client, drop, name, tmp_path) == [(weather_raw / name).read_bytes()]
    assert finished_runs(drop, "preprocess") == {f"{drop.incoming(n)}@1": 1 for n in names}
    assert not list(parts.iterdir())  # no partial or downloaded copies left behind


def test_file_on_ftp_to_predictions_in_mlflow_by_the_watch_service_loop(
    drop: Drop, task_env, weather_raw: Path, ngas_client, tmp_path: Path
):
    ctx = TaskContext.from_config()
    sources = [str(weather_raw / f"seattle-{y}.csv") for y in (2012, 2013)]
    raw = run_task("load-raw", {}, {"sources": sources}, ctx=ctx)
    pre = run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": 2}, ctx=ctx)
    train = run_task("train", {"data": pre.outputs["preprocessed"]}, {"alpha": 1e-4}, ctx=ctx)
    run_task("promote", {}, {"model": train.outputs["model"]}, ctx=ctx)
    model = task_env["MLPIPE_MODEL_NAME"]

    env = {
        **os.environ,
        "MLPIPE_WATCH_PIPELINE": str(PIPELINES / "infer-incoming.yaml"),
        "MLPIPE_WATCH_STABLE_POLLS": "1",
    }
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([MLPIPE, "watch", "ftp"], env=env, stdout=out, stderr=out)
    try:
        wait_until(lambda: "watching ftp://" in log.read_text(), "the watcher", proc, log=log)
        (drop.root / "new.csv").write_bytes((weather_raw / "seattle-2015.csv").read_bytes())
        wait_until(lambda: "new.csv: done" in log.read_text(), "new.csv done", proc, log=log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        stop_process(proc)
    text = log.read_text()
    assert "SIGTERM: stopping after the current file" in text and "stopped" in text
    predictions = {r.file_id for r in ngas_client.list(f"{drop.prefix}/predictions/")}
    assert predictions == {f"{drop.prefix}/predictions/{model}-v1/new.csv"}
    assert finished_runs(drop, "infer") == {f"{drop.incoming('new.csv')}@1": 1}
    client = mlflow.MlflowClient(drop.tracking_uri)
    exp = client.get_experiment_by_name("pipeline-watch-infer")
    (run,) = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{TAG_WATCH_FILE}` = '{drop.incoming('new.csv')}@1' "
        "and tags.`mlpipe.step` = 'infer'",
    )
    assert run.data.tags["mlpipe.model_version"] == "1"
    assert run.data.metrics["rows"] > 300
