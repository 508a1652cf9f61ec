"""``pipeline.yaml`` validation: everything wrong is reported before anything runs."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from mlpipe.cli import main
from mlpipe.errors import BadInput
from mlpipe.models.weather import WeatherModel
from mlpipe.pipeline import load_pipeline, validate
from mlpipe.pipeline.validate import find_cycle

EXAMPLE = Path(__file__).resolve().parents[2] / "tasks_py" / "examples" / "weather"
GOOD = """
name: demo
tasks:
  load:
    task: load-raw
    params: {sources: [raw/*.csv]}
    outputs: {raw: raw}
  prep:
    task: preprocess
    inputs: {raw: raw}
    params: {lags: 2}
    outputs: {preprocessed: features}
  train:
    task: train
    inputs: {data: features}
    params: {alpha: 0.001, test_fraction: 0.25}
    outputs: {model: model}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def check(tmp_path: Path, text: str):
    return validate(load_pipeline(write(tmp_path, text)), WeatherModel())


@pytest.mark.parametrize("example", ["weather", "weather-retrain", "weather-onnx"])
def test_shipped_examples_are_valid_without_warnings(example):
    report = validate(load_pipeline(EXAMPLE.parent / example / "pipeline.yaml"), WeatherModel())
    assert report.errors == [] and report.warnings == []


def test_good_pipeline_warns_about_unused_output(tmp_path):
    report = check(tmp_path, GOOD)
    assert report.errors == []
    assert report.warnings == [
        "output 'model' of step train is needed by no step "
        "(list it under outputs: if it is a final result)"
    ]
    assert check(tmp_path, GOOD + "outputs: [model]\n").warnings == []


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("task: train", "task: fit", "step train (fit): unknown task 'fit'; known tasks: load-raw"),
        ("lags: 2", "lag: 2", "unknown parameter 'lag' of task preprocess; known: lags,"),
        ("alpha: 0.001,", "alpha: 0.001, depth: 3,", "unknown parameter 'depth' of task train"),
        ("params: {sources: [raw/*.csv]}", "params: {}", "task load-raw needs parameter 'sources'"),
        (
            "inputs: {data: features}",
            "inputs: {data: feature}",
            "input data = 'feature' is produced",
        ),
        ("inputs: {raw: raw}", "inputs: {rows: raw}", "unknown input 'rows'; known: raw"),
        ("inputs: {raw: raw}", "inputs: {}", "step prep (preprocess): needs input 'raw'"),
        ("outputs: {model: model}", "outputs: {model: raw}", "'raw' is produced by both load"),
        ("outputs: {model: model}", "outputs: {weights: model}", "unknown output 'weights'"),
    ],
)
def test_errors(tmp_path, old, new, error):
    assert old in GOOD
    report = check(tmp_path, GOOD.replace(old, new))
    assert any(error in e for e in report.errors), report.errors


def test_cycle_is_reported_with_its_path(tmp_path):
    text = GOOD.replace("inputs: {raw: raw}", "inputs: {raw: raw_again}").replace(
        "outputs: {model: model}",
        "outputs: {model: model}\n"
        + textwrap.indent(
            "again:\n  task: infer\n  inputs: {data: features, model: model}\n"
            "  outputs: {predictions: raw_again}\n",
            "  ",
        ),
    )
    report = check(tmp_path, text)
    assert "the tasks form a cycle: again -> prep -> again" in report.errors
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name: x\n", "tasks: the pipeline has no tasks"),
        ("tasks: {a: {task: train}}\n", "name: give the pipeline a name"),
        ("name: x\nsteps: {}\n", "unknown key(s) steps"),
        ("name: x\ntasks: {a: {task: train, retries: 3}}\n", "tasks.a: unknown key(s) retries"),
        ("name: x\ntasks: [a, b]\n", "tasks: expected a mapping"),
        ("name: [\n", "not valid YAML"),
    ],
)
def test_malformed_files(tmp_path, text, error):
    with pytest.raises(BadInput, match="pipeline.yaml: .*" + re.escape(error)):
        load_pipeline(write(tmp_path, text))


def test_cli_validate_exit_codes(tmp_path, capsys):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = main(list(args))
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    bad = write(tmp_path, GOOD.replace("lags: 2", "lag: 2").replace("task: train", "task: fit"))
    proc = run("pipeline", "validate", str(bad))
    assert proc.returncode == 2
    assert "the pipeline is invalid, nothing was run" in proc.stderr
    assert "unknown parameter 'lag'" in proc.stderr and "unknown task 'fit'" in proc.stderr
    good = write(tmp_path, GOOD)
    proc = run("pipeline", "validate", str(good))
    assert proc.returncode == 0, proc.stderr
    assert "is valid (3 steps)" in proc.stdout and "warning: output 'model'" in proc.stderr
    proc = run("pipeline", "run", str(good), "--executor", "nosuch")
    assert proc.returncode == 2 and "--executor nosuch: unknown executor" in proc.stderr
