"""The erosion monitor (issue 15 item 3): the PSI on constructed distributions against
values worked out here another way; the [monitor] settings' errors; and, against a real
MLflow (artifacts proxied to NGAS) and the NGAS double with a model trained and batches
predicted by the real tasks: a drift spike triggers exactly one retrain (the retrain
command is a real script recording each start), a second spike while it is pending and
one within min_interval trigger none, a batch waits until its truth arrives, the figures
are MLflow metrics over steps (the batch times), and the results site plots them with
the threshold line.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from statistics import NormalDist

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from http_faults import FaultyProxy
from mlpipe.cli import main
from mlpipe.config import MonitorConfig, load_config
from mlpipe.errors import BadInput
from mlpipe.monitor.psi import EMPTY_SHARE, psi
from mlpipe.monitor.trigger import MonitorBusy, TriggerFailed, TriggerState
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import run_task
from procs import free_port, stop_process, wait_until

MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")
PSI_THRESHOLD = 0.25
# the retrain stand-in: one line per start (pid, version, reason), then it waits until the
# test writes to the FIFO (a blocking read, no polling)
RETRAIN_SCRIPT = """#!/bin/sh
echo "$$ $MLPIPE_RETRAIN_VERSION $MLPIPE_RETRAIN_REASON" >> "$1"
read -r _ < "$2"
"""


def psi_by_hand(expected_shares: list[float], actual_shares: list[float]) -> float:
    """PSI from bin shares, written out term by term (empty shares as the module's floor)."""
    total = 0.0
    for e, a in zip(expected_shares, actual_shares, strict=True):
        e, a = max(e, EMPTY_SHARE), max(a, EMPTY_SHARE)
        total += (a - e) * math.log(a / e)
    return total


# ---------------------------------------------------------------------- PSI
def test_psi_of_the_same_values_is_zero_and_of_the_same_distribution_near_zero() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(20, 5, 5000)
    assert psi(values, values) == 0.0
    assert psi(values, rng.permutation(values)) == 0.0
    other = rng.normal(20, 5, 5000)  # another sample of the same distribution
    assert 0 < psi(values, other) < 0.02


def test_psi_equals_the_sum_over_known_bin_shares() -> None:
    """0..999: each decile holds exactly 100 values; the batch is placed at bin centres."""
    expected = np.arange(1000, dtype=float)
    counts = [300, 100, 100, 100, 100, 100, 50, 50, 50, 50]
    actual = np.concatenate([np.full(n, 100 * k + 50.0) for k, n in enumerate(counts)])
    by_hand = psi_by_hand([0.1] * 10, [n / 1000 for n in counts])
    assert by_hand == pytest.approx(0.2 * math.log(3) + 4 * 0.05 * math.log(2))
    assert psi(expected, actual) == pytest.approx(by_hand, rel=1e-12)
    assert psi(expected, actual) > PSI_THRESHOLD
    # all in the first bin: nine empty bins, each counted as the floor share
    only_low = np.full(200, 5.0)
    assert psi(expected, only_low) == pytest.approx(psi_by_hand([0.1] * 10, [1.0] + [0.0] * 9))
    # five bins: quintiles of 0..999 hold 200 values each
    assert psi(expected, actual, bins=5) == pytest.approx(
        psi_by_hand([0.2] * 5, [0.4, 0.2, 0.2, 0.1, 0.1]), rel=1e-12
    )


def test_psi_of_a_shifted_normal_matches_the_value_from_the_normal_cdf() -> None:
    """Samples of N(0, 1) and N(0.8, 1) against the exact PSI of the two distributions on the
    deciles of N(0, 1) (from the normal CDF, no sample)."""
    rng = np.random.default_rng(11)
    expected = rng.normal(0, 1, 200_000)
    actual = rng.normal(0.8, 1, 200_000)
    base, shifted = NormalDist(0, 1), NormalDist(0.8, 1)
    cuts = [-math.inf] + [base.inv_cdf(k / 10) for k in range(1, 10)] + [math.inf]

    def share(dist: NormalDist, low: float, high: float) -> float:
        return (dist.cdf(high) if high < math.inf else 1.0) - (
            dist.cdf(low) if low > -math.inf else 0.0
        )

    exact = psi_by_hand(
        [share(base, lo, hi) for lo, hi in zip(cuts, cuts[1:], strict=False)],
        [share(shifted, lo, hi) for lo, hi in zip(cuts, cuts[1:], strict=False)],
    )
    assert exact > PSI_THRESHOLD
    assert psi(expected, actual) == pytest.approx(exact, rel=0.03)
    # a small shift stays below the threshold
    small = rng.normal(0.1, 1, 200_000)
    assert psi(expected, small) < 0.05


def test_psi_with_tied_values_and_no_finite_value() -> None:
    """Many equal values (dry days: precipitation 0) merge quantile edges."""
    expected = np.array([0.0] * 600 + list(np.linspace(0.1, 40, 400)))
    assert psi(expected, expected) == 0.0
    assert psi(expected, np.zeros(300)) > PSI_THRESHOLD  # a batch of only dry days
    with pytest.raises(BadInput, match="the batch has no finite value"):
        psi(expected, [math.nan, math.inf])


# ------------------------------------------------------------------ config
@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"MLPIPE_MONITOR_RETRAIN_UNIT": "r.service", "MLPIPE_MONITOR_RETRAIN_COMMAND": "x"},
            "env MLPIPE_MONITOR_RETRAIN_COMMAND): set one of them, not both",
        ),
        (
            {"MLPIPE_MONITOR_RETRAIN_UNIT": "retrain; rm -rf /"},
            "env MLPIPE_MONITOR_RETRAIN_UNIT): a systemd service unit like",
        ),
        ({"MLPIPE_MONITOR_MIN_COVERAGE": "0"}, "MLPIPE_MONITOR_MIN_COVERAGE): a share above 0"),
        ({"MLPIPE_MONITOR_PSI_THRESHOLD": "-1"}, "MLPIPE_MONITOR_PSI_THRESHOLD): must be >= 0"),
        ({"MLPIPE_MONITOR_BINS": "1"}, "MLPIPE_MONITOR_BINS): at least 2 bins"),
        ({"MLPIPE_MONITOR_ERROR_METRIC": "r2"}, "MLPIPE_MONITOR_ERROR_METRIC: must be one of"),
        ({"MLPIPE_MONITOR_RETRAIN_COMMAND": "run 'x"}, "retrain_command"),
    ],
)
def test_bad_monitor_settings_name_the_key_and_variable(env: dict[str, str], said: str) -> None:
    with pytest.raises(BadInput) as err:
        load_config(env={"MLPIPE_CONFIG": os.environ["MLPIPE_CONFIG"], **env})
    assert said in str(err.value)


# ---------------------------------------------------------------- trigger
# systemd's stand-in for the unit trigger: records each call, answers ActiveState from a file
FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$FAKE_SYSTEMCTL_CALLS"
case "$1" in
  start) [ -e "$FAKE_SYSTEMCTL_REFUSE" ] && { echo "Access denied" >&2; exit 4; }
         echo activating > "$FAKE_SYSTEMCTL_STATE" ;;
  show) cat "$FAKE_SYSTEMCTL_STATE" 2>/dev/null || echo inactive ;;
esac
"""
UNIT = "mlpipe-pipeline@retrain.service"


@pytest.fixture
def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    files = {k: tmp_path / f"systemctl-{k}" for k in ("calls", "state", "refuse")}
    for key, path in files.items():
        monkeypatch.setenv(f"FAKE_SYSTEMCTL_{key.upper()}", str(path))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return files


def trigger_config(tmp_path: Path, **given: object) -> MonitorConfig:
    return dataclasses.replace(load_config().monitor, state_dir=tmp_path / "state", **given)


def test_the_unit_trigger_starts_the_unit_once_while_it_runs(
    tmp_path, fake_systemctl, monkeypatch, capsys
) -> None:
    cfg = trigger_config(tmp_path, retrain_unit=UNIT, min_interval=0.0)
    calls = fake_systemctl["calls"]
    monkeypatch.setenv("MLPIPE_MONITOR_STATE_DIR", str(cfg.state_dir))
    monkeypatch.setenv("MLPIPE_MONITOR_RETRAIN_UNIT", UNIT)
    with TriggerState(cfg, "m") as state:
        first = state.request("psi 0.9 above psi_threshold 0.25", "3")
        assert first.outcome == "triggered" and UNIT in first.message
        assert calls.read_text().splitlines() == [f"start --no-block {UNIT}"]
        # status while this pass holds the lock: read, not refused
        code, out = monitor(capsys, "status", "--model", "m")
        assert code == 0 and "retrain pending since" in out and "psi 0.9" in out, out
        again = state.request("psi 0.8", "3")  # activating: pending
        assert again.outcome == "pending" and "is still pending" in again.message
        fake_systemctl["state"].write_text("active\n")
        assert state.request("psi 0.8", "3").outcome == "pending"
        fake_systemctl["state"].write_text("failed\n")  # ended (badly): a new one may start
        assert state.request("psi 0.7", "4").outcome == "triggered"
        starts = [c for c in calls.read_text().splitlines() if c.startswith("start")]
        assert len(starts) == 2
        recorded = json.loads(state.path.read_text())
        assert recorded["pending"]["unit"] == UNIT and recorded["pending"]["version"] == "4"
        # another monitor of the same model meanwhile: refused, nothing done
        with pytest.raises(MonitorBusy, match="another monitor holds"), TriggerState(cfg, "m"):
            pass


def test_a_refused_systemctl_start_is_an_error_and_records_nothing(tmp_path, fake_systemctl):
    fake_systemctl["refuse"].write_text("")
    cfg = trigger_config(tmp_path, retrain_unit=UNIT)
    with TriggerState(cfg, "m") as state, pytest.raises(TriggerFailed) as err:
        state.request("psi 0.9", "1")
    assert f"systemctl start --no-block {UNIT}: exit 4: Access denied" in str(err.value)
    assert not (tmp_path / "state" / "m.json").exists()


def test_a_command_that_ended_is_no_longer_pending(tmp_path: Path) -> None:
    cfg = trigger_config(tmp_path, retrain_command="true", min_interval=0.0)
    with TriggerState(cfg, "m") as state:
        assert state.request("rmse 9 above error_threshold 5", "2").outcome == "triggered"
        pid = json.loads(state.path.read_text())["pending"]["pid"]
        wait_until(lambda: not alive(pid), f"process {pid} (true) to end", timeout=30)
        assert state.request("rmse 9", "2").outcome == "triggered"
    unset = trigger_config(tmp_path)
    with TriggerState(unset, "m") as state:
        assert state.request("rmse 9", "2").outcome == "not configured"


# ------------------------------------------------------------ the monitor
class RetrainStub:
    """The configured retrain command: a real script; each start adds a line to ``marker``."""

    def __init__(self, work: Path) -> None:
        self.marker = work / "retrains.txt"
        self.fifo = work / "release"
        os.mkfifo(self.fifo)
        script = work / "retrain.sh"
        script.write_text(RETRAIN_SCRIPT)
        script.chmod(0o755)
        self.command = f"{script} {self.marker} {self.fifo}"

    def starts(self) -> list[list[str]]:
        if not self.marker.exists():
            return []
        return [line.split(" ", 2) for line in self.marker.read_text().splitlines()]

    def release(self, pid: int) -> None:
        """Let the waiting script end, and wait until its process has."""

        def opened() -> bool:
            try:  # ENXIO until the script has the FIFO open for reading
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                return False
            os.write(fd, b"go\n")
            os.close(fd)
            return True

        wait_until(opened, "the retrain script reading its FIFO", timeout=30)
        wait_until(lambda: not alive(pid), f"retrain script {pid} to end", timeout=30)

    def stop_all(self) -> None:
        for start in self.starts():
            pid = int(start[0])
            if alive(pid):
                os.kill(pid, 15)


def alive(pid: int) -> bool:
    """Process ``pid`` exists and is not a zombie (read from /proc here, independently)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture
def retrain_stub(tmp_path: Path) -> Iterator[RetrainStub]:
    stub = RetrainStub(tmp_path)
    yield stub
    stub.stop_all()


def monitor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["monitor", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def drifted(frame: pd.DataFrame, year: int, shift: float) -> pd.DataFrame:
    """The rows moved to ``year`` (dates of their own) with the temperatures ``shift`` higher."""
    out = frame.copy()
    out["date"] = [f"{year}{d[4:]}" for d in out["date"]]
    for column in [c for c in out.columns if c.startswith("temp_")] + ["target"]:
        out[column] = out[column] + shift
    return out


def test_a_drift_spike_triggers_one_retrain_and_the_figures_are_metrics_over_time(
    task_env, weather_raw, ngas_client, tmp_path, retrain_stub, monkeypatch, capsys
):
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    prefix = task_env["MLPIPE_PIPELINE_DATA_PREFIX"]
    experiment = task_env["MLPIPE_PIPELINE_EXPERIMENT"]
    client = mlflow.MlflowClient()
    for key, value in {
        "MLPIPE_MONITOR_EXPERIMENTS": experiment,
        "MLPIPE_MONITOR_STATE_DIR": str(tmp_path / "state"),
        "MLPIPE_MONITOR_RETRAIN_COMMAND": retrain_stub.command,
        "MLPIPE_MONITOR_MIN_INTERVAL": "3600",
        "MLPIPE_MONITOR_ERROR_THRESHOLD": "50",
    }.items():
        monkeypatch.setenv(key, value)

    def preprocessed(*years: int) -> list[dict[str, object]]:
        raw = run_task(
            "load-raw",
            {},
            {"sources": [str(weather_raw / f"seattle-{y}.csv") for y in years]},
            ctx=ctx,
        )
        return run_task("preprocess", {"raw": raw.outputs["raw"]}, {"lags": 2}, ctx=ctx).outputs[
            "preprocessed"
        ]

    def archived(frame: pd.DataFrame, file_id: str) -> dict[str, object]:
        path = tmp_path / f"{uuid.uuid4().hex}.csv"
        frame.to_csv(path, index=False)
        info = ngas_client.archive(path, file_id)
        return {"id": info.file_id, "version": info.version, "checksum": info.checksum}

    def infer(files: list[dict[str, object]]) -> str:
        return run_task("infer", {"data": files}, {}, ctx=ctx).run_id

    # version 1 trained on 2012-2013, production
    run_task("train", {"data": preprocessed(2012, 2013)}, {}, ctx=ctx)
    run_task("promote", {}, {"model": f"models:/{name}/1"}, ctx=ctx)
    (y2014,) = preprocessed(2014)  # under <prefix>/preprocessed/: its truth is there too
    local = tmp_path / "2014.csv"
    ngas_client.retrieve(str(y2014["id"]), local)
    frame_2014 = pd.read_csv(local, dtype={"date": str})

    normal = infer([y2014])
    spike = infer([archived(drifted(frame_2014, 2031, 15), f"{prefix}/preprocessed/d1.csv")])
    # a batch whose truth has not arrived: its inputs are not under the truth prefix
    late_frame = drifted(frame_2014, 2040, 0)
    late = infer([archived(late_frame, f"{prefix}/incoming/late.csv")])

    code, out = monitor(capsys, "run")
    assert code == 0, out
    assert "2 batch(es) evaluated, 1 waiting for truth, 0 failed, 1 retrain(s) triggered" in out
    assert f"batch {late} (version 1" in out and "waiting for truth: 0 of" in out
    (start,) = retrain_stub.starts()
    pid, version, reason = int(start[0]), start[1], start[2]
    assert version == "1" and reason.startswith("psi ") and f"batch {spike}" in reason
    assert "above psi_threshold 0.25" in reason
    assert alive(pid)

    # a second spike while that retrain is pending: none started; the late truth arrives
    spike2 = infer([archived(drifted(frame_2014, 2032, 12), f"{prefix}/preprocessed/d2.csv")])
    archived(late_frame, f"{prefix}/preprocessed/late.csv")
    code, out = monitor(capsys, "run")
    assert code == 0, out
    assert "2 batch(es) evaluated, 0 waiting for truth, 0 failed, 0 retrain(s) triggered" in out
    assert "is still pending" in out
    assert len(retrain_stub.starts()) == 1
    code, out = monitor(capsys, "status")
    assert code == 0 and "retrain pending since" in out and f"process {pid}" in out, out

    # the retrain ends; a spike within min_interval of the trigger: none either
    retrain_stub.release(pid)
    code, out = monitor(capsys, "status")
    assert "no retrain pending" in out and "last trigger" in out, out
    spike3 = infer([archived(drifted(frame_2014, 2033, 15), f"{prefix}/preprocessed/d3.csv")])
    code, out = monitor(capsys, "run")
    assert code == 0 and "less than [monitor] min_interval 3600s ago" in out, out
    assert len(retrain_stub.starts()) == 1

    # min_interval 0: the next spike starts the next retrain
    monkeypatch.setenv("MLPIPE_MONITOR_MIN_INTERVAL", "0")
    spike4 = infer([archived(drifted(frame_2014, 2034, 15), f"{prefix}/preprocessed/d4.csv")])
    code, out = monitor(capsys, "run")
    assert code == 0 and "1 retrain(s) triggered" in out, out
    assert len(retrain_stub.starts()) == 2
    retrain_stub.release(int(retrain_stub.starts()[1][0]))

    # nothing new: nothing evaluated or logged again
    code, out = monitor(capsys, "run")
    assert code == 0 and "no batch to evaluate" in out, out

    # the figures are metrics of one monitor run, at step = each batch's start time
    (monitor_run,) = client.search_runs(
        [ctx.experiment_id()], "tags.`mlpipe.task` = 'monitor'", max_results=5
    )
    run_id = monitor_run.info.run_id
    assert monitor_run.data.tags["mlpipe.model_name"] == name
    batches = [normal, spike, late, spike2, spike3, spike4]
    starts = {b: client.get_run(b).info.start_time for b in batches}
    for b in batches:
        assert client.get_run(b).data.tags["mlpipe.monitor_run"] == run_id

    def history(key: str) -> dict[int, float]:
        found = client.get_metric_history(run_id, key)
        assert len(found) == len({m.step for m in found}), f"{key} logged twice at a step"
        return {m.step: m.value for m in found}

    drift = history("psi_max")
    assert sorted(drift) == sorted(starts.values())
    assert drift[starts[normal]] < PSI_THRESHOLD and drift[starts[late]] < PSI_THRESHOLD
    assert all(drift[starts[b]] > PSI_THRESHOLD for b in (spike, spike2, spike3, spike4))
    assert set(history("psi_max_threshold").values()) == {PSI_THRESHOLD}
    assert set(history("rmse_threshold").values()) == {50.0}
    triggered = history("retrain_triggered")
    assert [b for b in batches if triggered[starts[b]] == 1.0] == [spike, spike4]
    assert history("psi.temp_max")[starts[spike]] > PSI_THRESHOLD
    assert history("rows")[starts[normal]] == len(frame_2014)

    # the error against the truth, worked out here from the stored predictions
    outputs = mlflow.artifacts.load_dict(f"runs:/{normal}/mlpipe/outputs.json")
    (predicted,) = outputs["predictions"]
    ngas_client.retrieve(predicted["id"], tmp_path / "pred.csv", version=predicted["version"])
    pred = pd.read_csv(tmp_path / "pred.csv", dtype={"date": str})
    both = pred.merge(frame_2014[["date", "target"]], on="date", suffixes=("_p", ""))
    error = both["predicted_next_temp_max"] - both["target"]
    assert history("rmse")[starts[normal]] == pytest.approx(float(np.sqrt((error**2).mean())))
    assert history("mae")[starts[normal]] == pytest.approx(float(error.abs().mean()))

    # the results site: the figures over time, with the threshold line
    _check_site(task_env, tmp_path, name, run_id, drift)


def _check_site(
    env: dict[str, str], work: Path, name: str, run_id: str, drift: dict[int, float]
) -> None:
    experiment = env["MLPIPE_PIPELINE_EXPERIMENT"]
    port = free_port()
    log = work / f"web-{port}.log"
    proc = subprocess.Popen(
        [MLPIPE, "web", "serve", "--port", str(port), "--refresh", "0"]
        + ["--experiment", experiment, "--model", name],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: requests.get(f"{url}/healthz", timeout=5).status_code == 200,
            "mlpipe web serve",
            proc,
            log=log,
        )
        data = requests.get(f"{url}/api/monitor/{name}", timeout=60).json()
        (entry,) = data["runs"]
        assert entry["run_id"] == run_id and entry["experiment"] == experiment
        latest = max(drift)
        assert entry["latest"]["psi_max"] == pytest.approx(drift[latest])
        assert entry["thresholds"] == {"psi_max": PSI_THRESHOLD, "rmse": 50.0}
        plot = f"/plots/monitor/{run_id}/psi_max.png"
        assert plot in entry["plots"]
        page = requests.get(f"{url}/monitor/{name}", timeout=60)
        assert page.status_code == 200 and f'<img src="{plot}"' in page.text
        assert f'href="/monitor/{name}"' in requests.get(f"{url}/models/{name}", timeout=60).text
        png = requests.get(url + plot, timeout=60)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        from PIL import Image

        Image.open(io.BytesIO(png.content)).load()
        svg = requests.get(f"{url}/plots/monitor/{run_id}/psi_max.svg", timeout=60).text
        assert 'id="figure"' in svg and 'id="threshold"' in svg
        assert requests.get(f"{url}/plots/monitor/{run_id}/rows.png", timeout=60).status_code == 404
        no_run = requests.get(f"{url}/plots/monitor/{'0' * 32}/psi_max.png", timeout=60)
        assert no_run.status_code == 404
        assert json.loads(requests.get(f"{url}/api/monitor/nope", timeout=60).text)["status"] == 404
    finally:
        stop_process(proc)


def test_mlflow_failing_during_a_pass_fails_the_batch_and_triggers_nothing(
    task_env, weather_raw, tmp_path, retrain_stub, monkeypatch, capsys
):
    """A 503 reading the lineage (data.json): exit 1 naming it, no retrain, the batch not
    marked; the next pass, MLflow answering, evaluates it and triggers."""
    ctx = TaskContext.from_config()
    name = task_env["MLPIPE_MODEL_NAME"]
    client = mlflow.MlflowClient()
    raw = run_task(
        "load-raw", {}, {"sources": [str(weather_raw / "seattle-2012.csv")]}, ctx=ctx
    ).outputs["raw"]
    (data,) = run_task("preprocess", {"raw": raw}, {"lags": 1}, ctx=ctx).outputs["preprocessed"]
    run_task("train", {"data": [data]}, {}, ctx=ctx)
    run_task("promote", {}, {"model": f"models:/{name}/1"}, ctx=ctx)
    batch = run_task("infer", {"data": [data]}, {}, ctx=ctx).run_id
    for key, value in {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
        "MLPIPE_MONITOR_EXPERIMENTS": task_env["MLPIPE_PIPELINE_EXPERIMENT"],
        "MLPIPE_MONITOR_STATE_DIR": str(tmp_path / "state"),
        "MLPIPE_MONITOR_RETRAIN_COMMAND": retrain_stub.command,
        # the batch is the training data itself: the error threshold is what triggers
        "MLPIPE_MONITOR_PSI_THRESHOLD": "0",
        "MLPIPE_MONITOR_ERROR_THRESHOLD": "0.01",
    }.items():
        monkeypatch.setenv(key, value)
    with FaultyProxy(task_env["MLPIPE_MLFLOW_TRACKING_URI"]) as proxy:
        proxy.fail = ("GET", r"/mlflow-artifacts/artifacts/.*data\.json")
        monkeypatch.setenv("MLPIPE_MLFLOW_TRACKING_URI", proxy.url)
        code, out = monitor(capsys, "run")
    monkeypatch.setenv("MLPIPE_MLFLOW_TRACKING_URI", task_env["MLPIPE_MLFLOW_TRACKING_URI"])
    assert code == 1, out
    assert proxy.failed >= 1 and "Traceback" not in out
    assert f"batch {batch} (version 1" in out and "failed:" in out, out
    assert f"reading data.json of run {batch}: the MLflow server at {proxy.url}" in out, out
    assert "0 batch(es) evaluated, 0 waiting for truth, 1 failed, 0 retrain(s) triggered" in out
    assert retrain_stub.starts() == []
    assert "mlpipe.monitor_run" not in client.get_run(batch).data.tags

    code, out = monitor(capsys, "run")
    assert code == 0, out
    assert "1 batch(es) evaluated" in out and "1 retrain(s) triggered" in out
    (start,) = retrain_stub.starts()
    assert "rmse" in start[2] and "above error_threshold 0.01" in start[2]
    assert client.get_run(batch).data.tags["mlpipe.monitor_run"]
