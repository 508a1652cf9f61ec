"""Slurm settings checked before anything is submitted: a step's ``resources:``, ``[slurm]``,
a missing work dir or Slurm command line; the rendered script's lines (no Slurm needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mlpipe.cli import main
from mlpipe.config import load_config
from mlpipe.errors import BadInput
from mlpipe.pipeline.executors.slurm import defaults
from mlpipe.pipeline.spec import load_pipeline
from mlpipe.slurm import script

PIPE = """
name: res
tasks:
  load:
    task: load-raw
    params: {{sources: [a.csv]}}
    outputs: {{raw: raw}}
    resources: {resources}
"""


def write(tmp_path: Path, resources: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPE.format(resources=resources))
    return path


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ("{gpus: 1}", "tasks.load.resources: unknown key(s) gpus; known: partition"),
        ("{time_limit: 'two hours'}", "tasks.load.resources.time_limit: a Slurm time like 30"),
        ("{memory: 8 GB}", "tasks.load.resources.memory: a size like 4096M or 8G"),
        ("{cpus: 0}", "tasks.load.resources.cpus: a whole number >= 1"),
        ("{extra: ['--output=/tmp/x']}", "--output is set by mlpipe itself"),
        ("{extra: ['qos=long']}", "each extra #SBATCH line is one option like --qos=long"),
        ("{extra: ['--qos long']}", "each extra #SBATCH line is one option like --qos=long"),
        ("{extra: ['--comment=\"x\"']}", "--key=value without double quotes"),
        ("{venv: relative/venv}", "tasks.load.resources.venv: an absolute path on the nodes"),
        ("{modules: [python 3]}", "tasks.load.resources.modules: a module name"),
        ("[1, 2]", "tasks.load.resources: expected a mapping"),
    ],
)
def test_bad_step_resources_name_the_file_and_key(tmp_path, resources, message):
    path = write(tmp_path, resources)
    with pytest.raises(BadInput) as err:
        load_pipeline(path)
    assert str(path.resolve()) in str(err.value) and message in str(err.value)


def test_step_resources_override_the_config_in_the_script(tmp_path):
    path = write(
        tmp_path,
        "{time_limit: 90, cpus: 2, memory: 4G, extra: ['--qos=long', '--comment=a b'],"
        " modules: [py/3.11]}",
    )
    step = load_pipeline(path).steps["load"]
    config = load_config(
        env={
            "MLPIPE_SLURM_PARTITION": "batch",
            "MLPIPE_SLURM_ACCOUNT": "radio",
            "MLPIPE_SLURM_SBATCH_EXTRA": "--exclusive; --comment=mlpipe",
            "MLPIPE_SLURM_CONDA_ENV": "mlpipe",
        }
    )
    res = defaults(config.slurm).with_step(step.resources)
    files = script.JobScript("res", "r1", "load", tmp_path, "/opt/venv/bin/python", res)
    text = script.render(files)
    sbatch = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert sbatch == [
        "#SBATCH --job-name=mlpipe-res-load",
        f"#SBATCH --output={tmp_path}/load.log",
        f"#SBATCH --chdir={tmp_path}",
        "#SBATCH --no-requeue",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --partition=batch",
        "#SBATCH --account=radio",
        "#SBATCH --time=90",
        "#SBATCH --mem=4G",
        "#SBATCH --qos=long",  # the step's extra lines replace the config's
        '#SBATCH --comment="a b"',  # sbatch splits #SBATCH lines at blanks
    ]
    assert "module load py/3.11\n" in text and "conda activate mlpipe\n" in text
    assert text.rstrip().endswith(
        f"exec /opt/venv/bin/python -m mlpipe.pipeline.step {tmp_path}/load.job.json "
        f"{tmp_path}/load.outcome.json"
    )


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("MLPIPE_SLURM_TIME_LIMIT", "1h", "a Slurm time like"),
        ("MLPIPE_SLURM_SBATCH_EXTRA", "--dependency=afterok:1", "--dependency is set by mlpipe"),
        ("MLPIPE_SLURM_WORK_DIR", "scratch", "an absolute path"),
        ("MLPIPE_SLURM_POLL_MAX", "0", "must be > 0 seconds"),
    ],
)
def test_bad_slurm_config_names_the_variable(var, value, message):
    with pytest.raises(BadInput) as err:
        load_config(env={var: value})
    assert f"env {var}" in str(err.value) and message in str(err.value)


def test_no_work_dir_or_no_slurm_commands_is_bad_input_before_submitting(
    task_env, tmp_path, monkeypatch, capsys
):
    path = write(tmp_path, "{}")
    (tmp_path / "a.csv").write_text("date,precipitation,temp_max,temp_min,wind,weather\n")
    assert main(["pipeline", "run", str(path), "--executor", "slurm"]) == 2
    assert (
        "[slurm] work_dir (file or env MLPIPE_SLURM_WORK_DIR): not set" in capsys.readouterr().err
    )

    monkeypatch.setenv("MLPIPE_SLURM_WORK_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(Path(os.path.abspath(sys.executable)).parent))  # no Slurm
    assert main(["pipeline", "run", str(path), "--executor", "slurm"]) == 2
    err = capsys.readouterr().err
    assert "--executor slurm: sbatch, sacct, squeue, scancel not found on PATH" in err
    assert not list(tmp_path.glob("*/load.sbatch"))  # nothing was written for a job
