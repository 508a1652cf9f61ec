"""Pipeline ``inputs:``: data given by the starter (``mlpipe watch ftp``), not by a step."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.cli import main
from mlpipe.config import load_config
from mlpipe.errors import BadInput
from mlpipe.pipeline.spec import load_pipeline
from mlpipe.pipeline.validate import validate
from mlpipe.tasks.context import TaskContext
from mlpipe.watch import submit

PIPELINES = Path(__file__).resolve().parents[1] / "ftp"


def test_a_declared_input_must_be_given(capsys):
    pipeline = load_pipeline(PIPELINES / "infer-incoming.yaml")
    assert pipeline.inputs == ("incoming",)
    plugin = TaskContext(load_config()).plugin
    assert validate(pipeline, plugin, given={"incoming"}).errors == []
    (error,) = validate(pipeline, plugin).errors
    assert "inputs: 'incoming' is given when the pipeline is started" in error
    assert main(["pipeline", "run", str(PIPELINES / "infer-incoming.yaml")]) == 2
    assert "mlpipe watch ftp" in capsys.readouterr().err


def test_inputs_must_be_data_names(tmp_path: Path):
    bad = tmp_path / "p.yaml"
    bad.write_text("name: p\ninputs: incoming\ntasks: {t: {task: preprocess}}\n")
    with pytest.raises(BadInput, match=r"p\.yaml: inputs: expected a list of data names"):
        load_pipeline(bad)


def test_the_plan_gives_the_file_set_to_its_consumers_only():
    pipeline = load_pipeline(PIPELINES / "infer-incoming.yaml")
    files = [{"id": "d/incoming/a.csv", "version": 3, "checksum": "1", "size": 9}]
    plan = submit.InputPlan(pipeline, "r1", given={"incoming": files}, tags={"k": "v"})
    first = plan.template("preprocess")
    assert first.inputs == {"raw": files} and first.inputs_from == {}
    assert first.tags == {"k": "v"}
    second = plan.template("infer")
    assert second.inputs == {} and second.inputs_from == {"data": ["preprocess", "preprocessed"]}
    assert plan.deps == {"preprocess": set(), "infer": {"preprocess"}}


def test_the_watcher_refuses_a_pipeline_without_its_input():
    ctx = TaskContext(load_config())
    example = PIPELINES.parents[1] / "tasks_py" / "examples" / "weather" / "pipeline.yaml"
    with pytest.raises(BadInput, match=r"\[watch\] input 'incoming': pipeline .* does not"):
        submit.check(example, ctx, "incoming", "local")
    with pytest.raises(BadInput, match="executor"):
        submit.check(PIPELINES / "infer-incoming.yaml", ctx, "incoming", "nope")


def test_check_validates_settings_and_pipeline_without_contacting_anything(
    monkeypatch, capsys, tmp_path: Path
):
    monkeypatch.setenv("MLPIPE_WATCH_PIPELINE", str(PIPELINES / "infer-incoming.yaml"))
    monkeypatch.setenv("MLPIPE_WATCH_STATE_DIR", str(tmp_path / "state"))
    assert main(["watch", "ftp", "--check"]) == 2
    assert "[watch] host" in capsys.readouterr().err
    monkeypatch.setenv("MLPIPE_WATCH_HOST", "ftp.invalid")  # never resolved
    assert main(["watch", "ftp", "--check", "--name", "drop"]) == 0
    out = capsys.readouterr().out
    assert "watch drop: ftps://ftp.invalid:21/ (*) -> pipeline watch-infer (2 steps)" in out
    assert not (tmp_path / "state").exists()
