"""The Slurm command line (``sbatch``, ``sacct``, ``squeue``, ``scancel``) as subprocesses.

Every answer is read strictly: a missing command, a non-zero exit or output
that is not what the command prints is a :class:`SlurmError` naming the
command and what it said, never "no such job" or "done". Only ``squeue``'s
"Invalid job id" (the job has left the queue) means that squeue does not know
a job.

Job states (Slurm's ``sacct``/``squeue`` documentation): :data:`TERMINAL`
ones end a job, :data:`ACTIVE` ones do not; ``CANCELLED by 0`` is read by its
first word.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlpipe.errors import BadInput, MlpipeError
from mlpipe.slurm.transport import LocalTransport, Transport, TransportError

TERMINAL = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)
ACTIVE = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "STAGE_OUT",
        "SIGNALING",
        "STOPPED",
        "RESV_DEL_HOLD",
        "SPECIAL_EXIT",
    }
)
COMMANDS = ("sbatch", "sacct", "squeue", "scancel")


class SlurmError(MlpipeError):
    """A Slurm command is missing, failed or answered something unreadable."""


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str  # first word, e.g. CANCELLED of "CANCELLED by 0"
    exit_code: str = ""  # sacct's "code:signal"
    elapsed: str = ""
    detail: str = ""  # the whole state text, e.g. "CANCELLED by 0"
    source: str = "sacct"

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


class SlurmCli:
    """Runs the Slurm commands through ``transport`` (default: here); ``timeout`` s per command."""

    def __init__(self, timeout: float = 60.0, transport: Transport | None = None) -> None:
        self.timeout = timeout
        self.transport: Transport = transport or LocalTransport()

    def check_installed(self) -> None:
        missing = self.transport.missing(COMMANDS)
        if missing:
            where = self.transport.where
            raise BadInput(
                f"--executor slurm: {', '.join(missing)} not found on PATH on {where}; run "
                "mlpipe on a Slurm submit host (Debian package slurm-client), add the Slurm "
                "commands to PATH, or set [slurm] host to a login node"
            )

    def _run(self, cmd: Sequence[str], cwd: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return self.transport.run(cmd, self.timeout, cwd=cwd)
        except TransportError as exc:
            raise SlurmError(str(exc)) from None

    @staticmethod
    def _said(proc: subprocess.CompletedProcess[str]) -> str:
        return (proc.stderr.strip() or proc.stdout.strip() or "no output")[-2000:]

    def submit(self, script: str, dependencies: Iterable[str] = (), cwd: str | None = None) -> str:
        """``sbatch --parsable`` the script; the job id."""
        cmd = ["sbatch", "--parsable"]
        deps = list(dependencies)
        if deps:
            # a dependency that can never be satisfied cancels the job instead of leaving it
            cmd += [f"--dependency=afterok:{':'.join(deps)}", "--kill-on-invalid-dep=yes"]
        proc = self._run([*cmd, script], cwd=cwd)
        if proc.returncode != 0:
            raise SlurmError(
                f"sbatch refused {script} (exit {proc.returncode}): {self._said(proc)}"
            )
        first = proc.stdout.strip().splitlines()[-1:] or [""]
        job_id = first[0].split(";", 1)[0].strip()
        if not job_id.isdigit():
            raise SlurmError(f"sbatch {script}: expected a job id, got {proc.stdout.strip()!r}")
        return job_id

    def sacct(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """The state of each job sacct knows (the job row; an OOM batch step wins over FAILED)."""
        if not job_ids:
            return {}
        proc = self._run(
            [
                "sacct",
                "-j",
                ",".join(job_ids),
                "-o",
                "JobID,State,ExitCode,Elapsed",
                "--parsable2",
                "--noheader",
            ]
        )
        if proc.returncode != 0:
            raise SlurmError(
                f"sacct -j {','.join(job_ids)} (exit {proc.returncode}): {self._said(proc)}"
            )
        states: dict[str, JobState] = {}
        oom: set[str] = set()
        for line in proc.stdout.splitlines():
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) != 4 or not parts[1]:
                raise SlurmError(
                    f"sacct: unexpected line {line!r} (expected JobID|State|ExitCode|Elapsed)"
                )
            job, state_text, code, elapsed = parts
            base, _, step = job.partition(".")
            state = state_text.split()[0].rstrip("+")
            if step and state == "OUT_OF_MEMORY":
                oom.add(base)
            if not step and base in job_ids:
                states[base] = JobState(base, state, code, elapsed, state_text)
        for job in oom & set(states):
            if states[job].state == "FAILED":
                old = states[job]
                states[job] = JobState(job, "OUT_OF_MEMORY", old.exit_code, old.elapsed, old.detail)
        return states

    def squeue(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """The state of each job still in slurmctld's memory (the fallback before sacct sees it)."""
        found: dict[str, JobState] = {}
        for job in job_ids:
            proc = self._run(["squeue", "-h", "--states=all", "-j", job, "-o", "%i|%T"])
            if proc.returncode != 0:
                if "Invalid job id" in proc.stderr:
                    continue  # squeue's answer for a job it does not (or no longer) know
                raise SlurmError(f"squeue -j {job} (exit {proc.returncode}): {self._said(proc)}")
            for line in proc.stdout.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 2 and parts[0] == job:
                    found[job] = JobState(
                        job, parts[1].split()[0], source="squeue", detail=parts[1]
                    )
        return found

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """sacct's answer, squeue's for the jobs sacct has not seen yet."""
        states = self.sacct(job_ids)
        unseen = [j for j in job_ids if j not in states]
        if unseen:
            states.update(self.squeue(unseen))
        return states

    def cancel(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        proc = self._run(["scancel", *job_ids])
        if proc.returncode != 0:
            raise SlurmError(
                f"scancel {' '.join(job_ids)} (exit {proc.returncode}): {self._said(proc)}"
            )
