"""The plan -> DALiuGE physical graph translation (pure: no managers needed)."""

from __future__ import annotations

import http.server
import json
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlpipe.config import DaliugeConfig
from mlpipe.errors import MlpipeError
from mlpipe.pipeline import load_pipeline
from mlpipe.pipeline.executors.daliuge import node_url, physical_graph, place
from mlpipe.pipeline.executors.daliuge_node import decode, main, read_env_file
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.step import StepJob, StepOutcome

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dlg"))
EXAMPLE = Path(__file__).resolve().parents[2] / "tasks_py" / "examples" / "weather"
NODES = ["w1:8000:5555:6666", "w2:8000:5555:6666"]


def _args(command: str) -> list[str]:
    """The node helper's arguments in an app's command (before the stderr redirection)."""
    words = shlex.split(command.split(" 2> ", 1)[0])
    assert words[1:3] == ["-m", "mlpipe.pipeline.executors.daliuge_node"], words
    return words


def test_the_example_becomes_apps_and_outcome_drops_placed_round_robin():
    plan = Plan(load_pipeline(EXAMPLE / "pipeline.yaml"), pipeline_run="r1")
    known = {"load": StepOutcome("load", "skipped", "run0", {"raw": [{"id": "a.csv"}]})}
    submit = [s for s in plan.order if s != "load"]
    jobs = {s: plan.template(s) for s in submit}
    placement = place(submit, NODES)
    assert set(placement.values()) == set(NODES)
    assert [placement[s] for s in submit] == [NODES[i % 2] for i in range(len(submit))]
    settings = DaliugeConfig(python="/opt/venv/bin/python", env_file="/etc/c.env")
    graph = physical_graph(plan, jobs, known, placement, "head", "sess-1", settings)

    drops = {d["oid"]: d for d in graph.drops}
    assert set(drops) == {f"{k}_{s}" for s in submit for k in ("app", "out", "err")}
    for step in submit:
        app = drops[f"app_{step}"]
        assert (app["node"], app["island"]) == (placement[step], "head")
        assert drops[f"out_{step}"]["node"] == drops[f"err_{step}"]["node"] == placement[step]
        assert app["outputs"] == [f"out_{step}", f"err_{step}"]
        words = _args(app["command"])
        assert words[0] == "/opt/venv/bin/python"
        assert StepJob.from_json(decode(words[3], "job")) == jobs[step]  # the job, intact
        assert words[4] == "{out_" + step + "}"
        assert words[words.index("--env-file") + 1] == "/etc/c.env"
        assert "--work-dir" not in words  # empty: the session's workspace
        assert app["command"].endswith("; rc=$?; tail -c 3000 {err_" + step + "} >&2; exit $rc")
        deps = sorted(plan.deps[step])
        assert app.get("inputs", []) == [f"out_{d}" for d in deps if d != "load"]
        for dep in deps:
            if dep == "load":  # skipped on the controller: its outcome goes inline
                known_word = words[words.index("--known") + 1]
                assert StepOutcome.from_json(decode(known_word, "known")) == known["load"]
            elif placement[dep] == placement[step]:
                assert "{out_" + dep + "}" in words
            else:  # read from the producer's node manager
                url = f"{node_url(placement[dep])}/sessions/sess-1/graph/drop/data/out_{dep}"
                assert url in words
    # roots: the apps with no producer in the graph are deployed as completed
    assert graph.roots == ["app_load_new", "app_preprocess"]
    assert drops["out_preprocess"]["consumers"] == ["app_train", "app_infer"]
    assert "consumers" not in drops["out_infer"]


def test_placement_needs_a_node_and_node_urls():
    with pytest.raises(MlpipeError, match="lists no node managers"):
        place(["a"], [])
    assert node_url("w1:8000:5555:6666") == "http://w1:8000"
    assert node_url("10.0.0.5:18000") == "http://10.0.0.5:18000"


def test_env_file_is_read_like_systemd_without_expansion(tmp_path):
    env = tmp_path / "credentials.env"
    env.write_text('# comment\n\nMLFLOW_TRACKING_USERNAME="pipe"\nPW="a$b\\"c\\\\d"\nQ=\'x y\'\n')
    assert read_env_file(env) == {
        "MLFLOW_TRACKING_USERNAME": "pipe",
        "PW": 'a$b"c\\d',
        "Q": "x y",
    }
    env.write_text("not a line\n")
    with pytest.raises(MlpipeError, match=r"credentials.env:1: expected KEY=value"):
        read_env_file(env)


def test_the_node_helper_writes_a_failed_outcome_when_it_cannot_prepare(tmp_path, capsys):
    plan = Plan(load_pipeline(EXAMPLE / "pipeline.yaml"), pipeline_run="r1")
    from mlpipe.pipeline.executors.daliuge_node import encode

    out = tmp_path / "out"
    job = encode(plan.template("load").to_json())
    code = main([job, str(out), "--env-file", str(tmp_path / "missing.env")])
    outcome = StepOutcome.from_json(out.read_text())
    assert code == 2 and outcome.step == "load" and outcome.bad_input
    assert "[daliuge] env_file" in outcome.summary and "missing.env" in outcome.summary
    assert outcome.summary in capsys.readouterr().err
    # a producer's node manager that does not answer: failed, naming the URL
    code = main([job, str(out), "--fetch", "http://127.0.0.1:9/sessions/s/graph/drop/data/x"])
    outcome = StepOutcome.from_json(out.read_text())
    assert code == 1 and not outcome.bad_input
    assert "cannot fetch a producer's outcome from http://127.0.0.1:9/" in outcome.summary


def test_the_exported_logical_graph_unrolls_with_the_daliuge_translator(tmp_path, capsys):
    from managers import DLG_VENV  # the translator is in the managers' venv

    from mlpipe.cli import main as cli

    out = tmp_path / "weather.graph"
    assert (
        cli(
            [
                "pipeline",
                "export",
                str(EXAMPLE / "pipeline.yaml"),
                "--format",
                "daliuge-lg",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    lg = json.loads(out.read_text())
    assert lg["modelData"]["schemaVersion"] == "OJS"
    plan = Plan(load_pipeline(EXAMPLE / "pipeline.yaml"), pipeline_run="x")
    apps = [n for n in lg["nodeDataArray"] if n["category"] == "BashShellApp"]
    assert sorted(a["name"] for a in apps) == sorted(plan.order)
    assert len(lg["nodeDataArray"]) == 3 * len(plan.order)
    assert len(lg["linkDataArray"]) == 2 * len(plan.order) + sum(len(d) for d in plan.deps.values())
    # DALiuGE's translator turns it into a physical graph template: apps with named inputs
    pgt = subprocess.run(
        [str(DLG_VENV / "bin" / "dlg"), "unroll", "-L", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert pgt.returncode == 0, pgt.stderr[-3000:]
    drops = [d for d in json.loads(pgt.stdout) if d.get("oid")]
    by_oid = {d["oid"]: d for d in drops}
    unrolled = {d["name"]: d for d in drops if d["categoryType"] == "Application"}
    assert set(unrolled) == set(plan.order)
    for step, app in unrolled.items():
        assert app["dropclass"] == "dlg.apps.bash_shell_app.BashShellApp"
        ports = sorted(name for link in app.get("inputs", []) for name in link.values())
        assert ports == sorted(plan.deps[step])
        for link in app.get("inputs", []):  # each input is the outcome file of that producer
            ((oid, port),) = link.items()
            assert by_oid[oid]["name"] == f"{port} outcome"
        command = app["command"]
        words = _args(command)
        job = StepJob.from_json(words[3])
        assert (job.step, job.tags) == (step, {"mlpipe.executor": "daliuge"})
        assert job.inputs_from == plan.template(step).inputs_from
        for dep in plan.deps[step]:
            assert "{" + dep + "}" in words


def test_an_unreachable_island_or_a_bad_setting_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from mlpipe.cli import main as cli
    from procs import free_port

    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "name: nowhere\noutputs: [raw]\ntasks:\n"
        "  load: {task: load-raw, params: {sources: [raw/]}, outputs: {raw: raw}}\n"
    )
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLPIPE_DALIUGE_URL", url)
    assert cli(["pipeline", "run", str(path), "--executor", "daliuge", "--force"]) == 1
    err = capsys.readouterr().err
    assert f"[daliuge] url {url}: listing the island's node managers: " in err
    assert "did not answer" in err
    # something else answers there: never taken for an island with no nodes
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MLPIPE_DALIUGE_URL", f"http://127.0.0.1:{server.server_port}")
        assert cli(["pipeline", "run", str(path), "--executor", "daliuge", "--force"]) == 1
        err = capsys.readouterr().err
        assert "answered '<html>hello</html>', expected a JSON list" in err
        assert "is [daliuge] url a DALiuGE island manager?" in err
    finally:
        server.shutdown()
    monkeypatch.setenv("MLPIPE_DALIUGE_TIMEOUT", "0")
    assert cli(["pipeline", "run", str(path), "--executor", "daliuge"]) == 2
    assert "[daliuge] timeout (file " in capsys.readouterr().err


class _HtmlPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the handler's API
        body = b"<html>hello</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
