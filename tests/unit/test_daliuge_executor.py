"""``--executor daliuge`` against real DALiuGE managers started on loopback (tests/dlg).

Two node managers and an island (module scope; a test that kills a node
manager starts its own). The steps run on the node managers with this venv's
python, configured by a worker mlpipe.toml ([daliuge] config_file) against the
real MLflow server and the NGAS double of tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests

from mlpipe.cli import main
from mlpipe.pipeline import load_pipeline
from mlpipe.pipeline.executors.daliuge import Graph, Island
from mlpipe.pipeline.runner import run_pipeline
from mlpipe.pipeline.step import StepOutcome
from mlpipe.tasks.context import TaskContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dlg"))
from managers import DLG_VENV, Manager, start_island, start_node_manager  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "tasks_py" / "examples" / "weather"
PYTHON = str(Path(os.path.abspath(sys.executable)))
TIMEOUT = 4.0  # [daliuge] timeout in these tests


@pytest.fixture(scope="module")
def island(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Manager, list[Manager]]]:
    base = tmp_path_factory.mktemp("dlg")
    nodes: list[Manager] = []
    dim: Manager | None = None
    try:
        nodes = [start_node_manager(base / f"nm{i}") for i in (1, 2)]
        dim = start_island(base / "dim", nodes)
        yield dim, nodes
    finally:
        for m in [dim, *nodes]:
            if m is not None:
                m.stop()


def _toml(values: dict[str, dict[str, str]]) -> str:
    return "".join(
        f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in body.items())
        for section, body in values.items()
    )


def use_island(
    monkeypatch: pytest.MonkeyPatch,
    dim: Manager,
    work: Path,
    env: dict[str, str],
    tag: str,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Point the controller at ``dim`` and write the workers' config (as ``env`` + tag, and
    the ``MLPIPE_<SECTION>_<KEY>`` settings ``extra``).

    The controller's own settings are made equal to the workers' (as on the
    cluster, where both read /etc/mlpipe/mlpipe.toml).
    """
    work.mkdir(parents=True, exist_ok=True)
    settings = {
        "MLPIPE_NGAS_URL": env["MLPIPE_NGAS_URL"],
        "MLPIPE_NGAS_RETRIES": "2",
        "MLPIPE_NGAS_BACKOFF": "0.05",
        "MLPIPE_MLFLOW_TRACKING_URI": env["MLPIPE_MLFLOW_TRACKING_URI"],
        "MLPIPE_PIPELINE_DATA_PREFIX": f"{env['MLPIPE_PIPELINE_DATA_PREFIX']}-{tag}",
        "MLPIPE_PIPELINE_EXPERIMENT": f"{env['MLPIPE_PIPELINE_EXPERIMENT']}-{tag}",
        "MLPIPE_MODEL_NAME": f"{env['MLPIPE_MODEL_NAME']}-{tag}",
        "MLPIPE_CACHE_DIR": str(work / "worker-cache"),
        "MLPIPE_CACHE_MODE": "good",
        **(extra or {}),
    }
    sections: dict[str, dict[str, str]] = {}
    for var, value in settings.items():
        section, key = var.removeprefix("MLPIPE_").lower().split("_", 1)
        sections.setdefault(section, {})[key] = value
    text = (
        _toml(sections)
        .replace('retries = "2"', "retries = 2")
        .replace('backoff = "0.05"', "backoff = 0.05")
    )
    (work / "worker.toml").write_text(text)
    (work / "credentials.env").write_text('# as the pipeline role writes it\nX_TEST="a$b"\n')
    for var, value in settings.items():
        monkeypatch.setenv(var, value)
    daliuge = {
        "MLPIPE_DALIUGE_URL": dim.url,
        "MLPIPE_DALIUGE_PYTHON": PYTHON,
        "MLPIPE_DALIUGE_CONFIG_FILE": str(work / "worker.toml"),
        "MLPIPE_DALIUGE_ENV_FILE": str(work / "credentials.env"),
        "MLPIPE_DALIUGE_POLL_INTERVAL": "0.2",
        "MLPIPE_DALIUGE_POLL_MAX": "1",
        "MLPIPE_DALIUGE_TIMEOUT": str(TIMEOUT),
        "MLPIPE_DALIUGE_REQUEST_TIMEOUT": "3",
    }
    for var, value in daliuge.items():
        monkeypatch.setenv(var, value)
    return settings


def example_copy(work: Path, name: str) -> Path:
    shutil.copytree(EXAMPLE / "raw", work / "raw")
    text = (EXAMPLE / "pipeline.yaml").read_text()
    text = text.replace("name: seattle-weather\n", f"name: {name}\n")
    text = text.replace("experiment: seattle-weather-pipeline", f"experiment: {name}")
    (work / "pipeline.yaml").write_text(text)
    return work / "pipeline.yaml"


def session_files(node: Manager, session: str) -> set[str]:
    workspace = node.root / "workspace" / session
    return {p.name for p in workspace.iterdir()} if workspace.is_dir() else set()


def test_example_pipeline_on_two_nodes_equals_local_and_a_rerun_submits_nothing(
    task_env, island, monkeypatch, tmp_path, capsys
):
    dim, nodes = island
    tag = task_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    client = mlflow.MlflowClient(task_env["MLPIPE_MLFLOW_TRACKING_URI"])

    # the local executor, in this process, as the reference
    local_path = example_copy(tmp_path / "local", f"weather-local-{tag}")
    local = run_pipeline(local_path, TaskContext.from_config(), "local")
    assert local.ok, local.summary()
    capsys.readouterr()  # MLflow's run links printed by the local run

    settings = use_island(monkeypatch, dim, tmp_path / "dlg", task_env, "dlg")
    path = example_copy(tmp_path / "dlg-pipe", f"weather-dlg-{tag}")
    before = set(Island(dim.url, 5).sessions())
    code = main(["pipeline", "run", str(path), "--executor", "daliuge", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    steps = list(load_pipeline(path).steps)
    assert summary["counts"] == {"ran": len(steps), "skipped": 0, "failed": 0, "blocked": 0}
    assert "step(s) done" in out.err  # progress lines

    sessions = set(Island(dim.url, 5).sessions()) - before
    assert len(sessions) == 1
    session = sessions.pop()
    # every MLflow run carries the executor and the session; same metrics as the local run
    for step in steps:
        run = client.get_run(summary["steps"][step]["run_id"])
        assert run.data.tags["mlpipe.executor"] == "daliuge"
        assert run.data.tags["mlpipe.daliuge.session"] == session
        assert run.data.tags["mlpipe.pipeline_run"] == summary["pipeline_run"]
        reference = client.get_run(local.outcomes[step].run_id)
        assert run.data.metrics == reference.data.metrics, step
    assert {"rmse", "mae", "r2"} <= set(
        client.get_run(summary["steps"]["train"]["run_id"]).data.metrics
    )
    assert summary["steps"]["train"]["outputs"] == {
        "model": f"models:/{settings['MLPIPE_MODEL_NAME']}/1"
    }
    version = client.get_model_version_by_alias(settings["MLPIPE_MODEL_NAME"], "production")
    assert version.version == "1"
    # the steps landed on both node managers (their outcome drops are in each workspace)
    placed = [{f for f in session_files(n, session) if f.startswith("out_")} for n in nodes]
    assert all(placed), placed
    assert sum(len(p) for p in placed) == len(steps)

    # the second run: everything unchanged on the controller, no session submitted
    code = main(["pipeline", "run", str(path), "--executor", "daliuge", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    again = json.loads(out.out)
    assert again["counts"] == {"ran": 0, "skipped": len(steps), "failed": 0, "blocked": 0}
    assert {s: o["run_id"] for s, o in again["steps"].items()} == {
        s: o["run_id"] for s, o in summary["steps"].items()
    }
    assert set(Island(dim.url, 5).sessions()) - before == {session}


TORCH = """\
name: {name}
outputs: [retrained]
tasks:
  load:
    task: load-raw
    params: {{sources: [raw/seattle-2012.csv, raw/seattle-2013.csv]}}
    outputs: {{raw: raw}}
  prep:
    task: preprocess
    inputs: {{raw: raw}}
    params: {{lags: 2}}
    outputs: {{preprocessed: rows}}
  train:
    task: train
    inputs: {{data: rows}}
    params: {{epochs: 20, seed: 3}}
    outputs: {{model: trained}}
  retrain:
    task: retrain
    inputs: {{data: rows, model: trained}}
    params: {{epochs: 5}}
    outputs: {{model: retrained}}
"""


def test_the_pytorch_model_trains_and_retrains_from_its_weights_on_the_nodes(
    task_env, island, monkeypatch, tmp_path, weather_raw, capsys
):
    from mlpipe.models.weather_torch import LOSS_METRIC

    dim, _ = island
    tag = task_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    settings = use_island(
        monkeypatch,
        dim,
        tmp_path / "dlg",
        task_env,
        "torch",
        {"MLPIPE_MODEL_PLUGIN": "weather-torch"},
    )
    (tmp_path / "raw").mkdir()
    for year in (2012, 2013):
        shutil.copy(weather_raw / f"seattle-{year}.csv", tmp_path / "raw")
    path = tmp_path / "pipeline.yaml"
    path.write_text(TORCH.format(name=f"torch-{tag}"))
    code = main(["pipeline", "run", str(path), "--executor", "daliuge", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    name = settings["MLPIPE_MODEL_NAME"]
    assert summary["steps"]["retrain"]["outputs"] == {"model": f"models:/{name}/2"}
    client = mlflow.MlflowClient(task_env["MLPIPE_MLFLOW_TRACKING_URI"])
    train, retrain = (client.get_run(summary["steps"][s]["run_id"]) for s in ("train", "retrain"))
    assert {r.data.tags["mlpipe.executor"] for r in (train, retrain)} == {"daliuge"}
    assert retrain.data.tags["mlpipe.parent_version"] == "1"
    info = mlflow.models.get_model_info(f"models:/{name}/2")
    assert "pytorch" in info.flavors
    # the same rows: retraining's loss before its first update is training's last loss, so
    # it started from the registered weights (a fresh net starts several times higher)
    trained = [m.value for m in client.get_metric_history(train.info.run_id, LOSS_METRIC)]
    retrained = [m.value for m in client.get_metric_history(retrain.info.run_id, LOSS_METRIC)]
    assert (len(trained), len(retrained)) == (21, 6)
    assert retrained[0] == pytest.approx(trained[-1], rel=1e-6)
    assert retrained[0] < trained[0] / 3


FAILING = """\
name: {name}
tasks:
  load: {{task: load-raw, params: {{sources: [raw/seattle-2013.csv]}}, outputs: {{raw: raw}}}}
  prep: {{task: preprocess, inputs: {{raw: raw}}, outputs: {{preprocessed: rows}}}}
  train:
    task: train
    inputs: {{data: rows}}
    params: {{alpha: -1}}
    outputs: {{model: model}}
  promote: {{task: promote, inputs: {{model: model}}, outputs: {{model: production}}}}
outputs: [production]
"""


def test_a_failing_step_reports_itself_and_its_stderr_dependents_blocked_rerun_resumes(
    task_env, island, monkeypatch, tmp_path, capsys, weather_raw
):
    dim, _ = island
    tag = task_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    use_island(monkeypatch, dim, tmp_path / "dlg", task_env, "fail")
    (tmp_path / "raw").mkdir()
    shutil.copy(weather_raw / "seattle-2013.csv", tmp_path / "raw")
    path = tmp_path / "pipeline.yaml"
    path.write_text(FAILING.format(name=f"failing-{tag}"))

    code = main(["pipeline", "run", str(path), "--executor", "daliuge", "--json"])
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert code == 2, out.err  # the step's exit code: bad input
    status = {s: o["status"] for s, o in summary["steps"].items()}
    assert status == {"load": "ran", "prep": "ran", "train": "failed", "promote": "blocked"}
    train = summary["steps"]["train"]
    assert train["bad_input"] is True
    assert "parameter alpha=-1: must be between 0 and 1000.0" in train["summary"]
    assert "train: failed on 127.0.0.1:" in out.err and "stderr (tail)" in out.err
    assert "train: failed: " in out.err  # the command's line for the step

    # fixed: the finished steps are skipped on the controller, train and promote run
    path.write_text(FAILING.format(name=f"failing-{tag}").replace("alpha: -1", "alpha: 0.001"))
    code = main(["pipeline", "run", str(path), "--executor", "daliuge", "--json"])
    out = capsys.readouterr()
    fixed = json.loads(out.out)
    assert code == 0, out.err
    assert {s: o["status"] for s, o in fixed["steps"].items()} == {
        "load": "skipped",
        "prep": "skipped",
        "train": "ran",
        "promote": "ran",
    }
    assert fixed["steps"]["load"]["run_id"] == summary["steps"]["load"]["run_id"]


def test_a_step_that_cannot_start_fails_with_its_stderr_tail(
    task_env, island, monkeypatch, tmp_path, capsys, weather_raw
):
    dim, _ = island
    use_island(monkeypatch, dim, tmp_path / "dlg", task_env, "nopython")
    monkeypatch.setenv("MLPIPE_DALIUGE_PYTHON", str(tmp_path / "no-venv" / "bin" / "python"))
    (tmp_path / "raw").mkdir()
    shutil.copy(weather_raw / "seattle-2014.csv", tmp_path / "raw")
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "name: nopython\noutputs: [raw]\ntasks:\n"
        "  load: {task: load-raw, params: {sources: [raw/]}, outputs: {raw: raw}}\n"
    )
    code = main(["pipeline", "run", str(path), "--executor", "daliuge", "--json"])
    out = capsys.readouterr()
    load = json.loads(out.out)["steps"]["load"]
    assert code == 1 and load["status"] == "failed"
    assert "wrote no outcome" in load["summary"]
    assert "no-venv/bin/python: No such file or directory" in load["summary"]


def test_an_exported_logical_graph_translated_by_daliuge_runs_on_a_node(
    task_env, island, monkeypatch, tmp_path, weather_raw
):
    dim, nodes = island
    tag = task_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    use_island(monkeypatch, dim, tmp_path / "dlg", task_env, "lg")
    (tmp_path / "raw").mkdir()
    shutil.copy(weather_raw / "seattle-2012.csv", tmp_path / "raw")
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"name: exported-{tag}\noutputs: [rows]\ntasks:\n"
        "  load: {task: load-raw, params: {sources: [raw/]}, outputs: {raw: raw}}\n"
        "  prep: {task: preprocess, inputs: {raw: raw}, outputs: {preprocessed: rows}}\n"
    )
    lg, pgt, pg = tmp_path / "p.graph", tmp_path / "p.pgt", tmp_path / "p.pg"
    assert main(["pipeline", "export", str(path), "--format", "daliuge-lg", "-o", str(lg)]) == 0
    # as a user would after editing it in EAGLE: translate, map onto the island's node, submit
    dlg = str(DLG_VENV / "bin" / "dlg")
    for args, out in (
        (["unroll-and-partition", "-L", str(lg), "-a", "metis", "-N", "1"], pgt),
        (["map", "-P", str(pgt), "-N", f"127.0.0.1,{nodes[0].node}", "-i", "1"], pg),
    ):
        proc = subprocess.run([dlg, *args], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out.write_text(proc.stdout)
    drops = [d for d in json.loads(pg.read_text()) if d.get("oid")]
    apps = {d["name"]: d for d in drops if d["categoryType"] == "Application"}
    roots = [d["oid"] for d in apps.values() if not d.get("inputs")]
    session = f"lg-{tag}"
    island_client = Island(dim.url, 5)
    island_client.submit(session, Graph(drops, {}, roots))
    deadline = time.monotonic() + 120
    while True:
        states, _ = island_client.status(session)
        if states and all(s in (4, 5, 6) for s in states.values()):
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.2)  # poll interval
    assert set(states.values()) == {4}, states  # FINISHED
    client = mlflow.MlflowClient(task_env["MLPIPE_MLFLOW_TRACKING_URI"])
    for step in ("load", "prep"):
        (out_oid,) = [
            o for link in apps[step]["outputs"] for o, port in link.items() if port == "outcome"
        ]
        text = island_client.drop_data(nodes[0].node, session, out_oid)
        outcome = StepOutcome.from_json(text or "", out_oid)
        assert outcome.status == "ran", outcome
        tags = client.get_run(outcome.run_id).data.tags
        assert tags["mlpipe.executor"] == "daliuge" and tags["mlpipe.daliuge.session"] == session


def test_ctrl_c_cancels_the_session(
    task_env, island, ngas_faults, monkeypatch, tmp_path, weather_raw, capsys
):
    dim, _ = island
    tag = task_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    use_island(monkeypatch, dim, tmp_path / "dlg", task_env, "cancel")
    (tmp_path / "raw").mkdir()
    shutil.copy(weather_raw / "seattle-2012.csv", tmp_path / "raw")
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"name: cancelled-{tag}\noutputs: [rows]\ntasks:\n"
        "  load: {task: load-raw, params: {sources: [raw/]}, outputs: {raw: raw}}\n"
        "  prep: {task: preprocess, inputs: {raw: raw}, outputs: {preprocessed: rows}}\n"
    )
    ngas_faults.faults.hold_retrieve = threading.Event()  # prep's download waits
    before = set(Island(dim.url, 5).sessions())
    main_thread = threading.get_ident()

    def interrupt() -> None:  # Ctrl-C once prep runs on its node
        _wait_running(dim, "app_prep", threading.main_thread(), before)
        signal.pthread_kill(main_thread, signal.SIGINT)

    helper = threading.Thread(target=interrupt, daemon=True)
    helper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(path, TaskContext.from_config(), "daliuge")
    finally:
        ngas_faults.faults.hold_retrieve.set()
        helper.join(timeout=30)
    assert "interrupted, cancelling it" in capsys.readouterr().err
    (session,) = set(Island(dim.url, 5).sessions()) - before
    states, drops = Island(dim.url, 5).status(session)
    assert 5 in states.values(), states  # CANCELLED
    # its process was stopped (DALiuGE 6.6 reports the killed app as ERROR)
    assert drops["app_prep"]["execStatus"] in (3, 4), drops["app_prep"]


@pytest.mark.parametrize("victim", ["nm", "dim"])
def test_a_killed_node_or_island_manager_fails_the_run_within_the_timeout(
    victim, task_env, ngas_faults, monkeypatch, tmp_path, tmp_path_factory, weather_raw
):
    base = tmp_path_factory.mktemp("dlg-kill")
    nm = start_node_manager(base / "nm")
    dim = start_island(base / "dim", [nm])
    try:
        use_island(monkeypatch, dim, tmp_path / "dlg", task_env, "kill")
        monkeypatch.setenv("MLPIPE_DALIUGE_REQUEST_TIMEOUT", "1")
        (tmp_path / "raw").mkdir()
        shutil.copy(weather_raw / "seattle-2012.csv", tmp_path / "raw")
        path = tmp_path / "pipeline.yaml"
        path.write_text(
            "name: killed\noutputs: [rows]\ntasks:\n"
            "  load: {task: load-raw, params: {sources: [raw/]}, outputs: {raw: raw}}\n"
            "  prep: {task: preprocess, inputs: {raw: raw}, outputs: {preprocessed: rows}}\n"
        )
        ngas_faults.faults.hold_retrieve = threading.Event()  # prep's download waits
        result: dict[str, object] = {}

        def run() -> None:
            try:
                result["run"] = run_pipeline(path, TaskContext.from_config(), "daliuge")
            except BaseException as exc:  # noqa: BLE001 - reported below
                result["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        _wait_running(dim, "app_prep", thread)
        killed = time.monotonic()
        (nm if victim == "nm" else dim).kill()
        thread.join(timeout=TIMEOUT + 30)
        ngas_faults.faults.hold_retrieve.set()  # lets the orphaned step process end
        assert not thread.is_alive(), "the executor hung after its node manager died"
        elapsed = time.monotonic() - killed
        assert "error" not in result, result
        outcomes = result["run"].outcomes  # type: ignore[attr-defined]
        outcome = outcomes["prep"]
        assert outcome.status == "failed"
        if victim == "nm":
            assert f"node manager {nm.node} stopped answering for {TIMEOUT:g} s" in outcome.summary
        else:  # the node manager still answers: load's outcome is read from it
            assert outcomes["load"].status == "ran"
            assert outcome.summary.startswith(
                f"step prep did not finish: the DALiuGE island did not answer for {TIMEOUT:g} s"
            ), outcome.summary
            # the session was cancelled on the node manager itself: prep is not running
            drops = requests.get(f"{nm.url}/api/sessions", timeout=5).json()
            assert drops and drops[0]["status"] == 5, drops  # CANCELLED
        assert TIMEOUT <= elapsed < TIMEOUT + 20
    finally:
        dim.stop()
        nm.stop()


def _wait_running(
    dim: Manager, oid: str, thread: threading.Thread, skip: set[str] | None = None
) -> None:
    """Until the island reports app ``oid`` running in a session not in ``skip`` (polled)."""
    island = Island(dim.url, 5)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert thread.is_alive(), "the run ended before its step started"
        for session in set(island.sessions()) - (skip or set()):
            _, drops = island.status(session)
            if drops.get(oid, {}).get("execStatus") == 1:
                return
        time.sleep(0.1)  # poll interval
    pytest.fail(f"{oid} was not running within 120 s")
