"""The sbatch script of one step, rendered from ``templates/job.sbatch`` (package data)."""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from mlpipe.slurm.resources import Resources

TEMPLATE = "job.sbatch"
_JOB_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class JobScript:
    """What one step's job runs and where its files are (all in the shared work dir)."""

    pipeline: str
    pipeline_run: str
    step: str
    work_dir: Path
    python: str
    resources: Resources
    env_file: str = ""
    upstream: Sequence[Path] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # exported after env_file (offline)

    @property
    def job_file(self) -> Path:
        return self.work_dir / f"{self.step}.job.json"

    @property
    def outcome_file(self) -> Path:
        return self.work_dir / f"{self.step}.outcome.json"

    @property
    def log(self) -> Path:
        return self.work_dir / f"{self.step}.log"

    @property
    def path(self) -> Path:
        return self.work_dir / f"{self.step}.sbatch"

    @property
    def job_name(self) -> str:
        return _JOB_NAME_BAD.sub("_", f"mlpipe-{self.pipeline}-{self.step}")[:120]


def _activation(res: Resources, env_file: str, env: Mapping[str, str]) -> str:
    lines = []
    if res.modules:
        lines.append("module load " + " ".join(shlex.quote(m) for m in res.modules))
    if res.conda_env:
        lines.append('eval "$(conda shell.bash hook)"')
        lines.append(f"conda activate {shlex.quote(res.conda_env)}")
    if res.venv:
        lines.append(f"source {shlex.quote(res.venv + '/bin/activate')}")
    if env_file:
        lines.append(f"set -a; source {shlex.quote(env_file)}; set +a")
    for key, value in env.items():
        lines.append(f"export {key}={shlex.quote(value)}")
    return "\n".join(lines)


def render(job: JobScript) -> str:
    """The script text (values in ``#SBATCH`` lines were checked to hold no spaces)."""
    template = files("mlpipe.slurm").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    upstream = "".join(f" --upstream {shlex.quote(str(p))}" for p in job.upstream)
    return string.Template(template).substitute(
        step=job.step,
        pipeline=job.pipeline,
        pipeline_run=job.pipeline_run,
        job_name=job.job_name,
        log=job.log,
        work_dir=job.work_dir,
        sbatch_lines="\n".join(f"#SBATCH {o}" for o in job.resources.sbatch_options()),
        activate=_activation(job.resources, job.env_file, job.env),
        python=shlex.quote(job.python),
        job_file=shlex.quote(str(job.job_file)),
        outcome_file=shlex.quote(str(job.outcome_file)),
        upstream=upstream,
    )
