"""The Slurm executor: every step a batch job, chained by ``afterok`` dependencies.

``run(plan, steps)`` walks the steps in dependency order. A step whose
producers are all settled here (skipped, or none) is asked ``steps.unchanged``
and, when unchanged, not submitted; its outcome file is written to the run's
work dir for its consumers. Every other step gets a job file
(``Plan.template``), an sbatch script rendered from the package's template
(:mod:`mlpipe.slurm.script`, resources from ``[slurm]`` and the step's
``resources:``) and is submitted with ``--dependency=afterok:<producers' job
ids>``; on the node it runs ``python -m mlpipe.pipeline.step JOB OUTCOME
--upstream ...``, which writes the outcome file also on failure.

The work dir (``[slurm] work_dir``/``<pipeline>-<run>``) must be visible to
this host and the nodes alike: at a real site, its shared filesystem.

Then the jobs are polled with ``sacct`` (``squeue`` for jobs sacct has not
seen yet), backing off from ``poll_interval`` to ``poll_max`` while nothing
changes; each job's log is streamed to stderr as it grows. A job ending in
anything but COMPLETED is a failed step with an error naming the step, the
job id and the state (TIMEOUT, OUT_OF_MEMORY, ...); when the job died before
the step finished its MLflow run, that run (found by its ``mlpipe.pipeline_run``
and ``mlpipe.step`` tags) is marked FAILED with the tags ``mlpipe.slurm.state``
and ``mlpipe.slurm.job_id``. The dependents of a failed step are ``blocked``
(their jobs cancelled). Ctrl-C cancels every submitted job (``scancel``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mlpipe.config import SlurmConfig
from mlpipe.errors import BadInput, MlpipeError
from mlpipe.pipeline.executors import slurm_offline
from mlpipe.pipeline.executors.base import StepRunner
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.step import (
    OK_STATUSES,
    TAG_PIPELINE_RUN,
    TAG_STEP,
    StepJob,
    StepOutcome,
)
from mlpipe.slurm import resources, script
from mlpipe.slurm.cli import JobState, SlurmCli, SlurmError
from mlpipe.slurm.transport import TransportError, transport_for

if TYPE_CHECKING:
    from mlpipe.tasks.context import TaskContext
    from mlpipe.tasks.spec import TaskSpec

TAG_EXECUTOR = "mlpipe.executor"
TAG_JOB_ID = "mlpipe.slurm.job_id"
TAG_STATE = "mlpipe.slurm.state"

# what a job's end state means for its step
_STATE_TEXT = {
    "TIMEOUT": "reached its time limit (TIMEOUT); raise time_limit in the step's resources: "
    "or [slurm] time_limit",
    "OUT_OF_MEMORY": "ran out of memory (OUT_OF_MEMORY); raise memory in the step's resources: "
    "or [slurm] memory",
    "CANCELLED": "was cancelled before it finished",
    "NODE_FAIL": "lost its node (NODE_FAIL); run the pipeline again",
    "PREEMPTED": "was preempted (PREEMPTED); run the pipeline again",
    "BOOT_FAIL": "could not start: its node failed to boot (BOOT_FAIL)",
    "DEADLINE": "missed its deadline (DEADLINE)",
    "FAILED": "failed",
}


def defaults(config: SlurmConfig) -> resources.Resources:
    """The job resources ``[slurm]`` gives every step."""
    return resources.Resources(
        partition=config.partition,
        account=config.account,
        time_limit=config.time_limit,
        cpus=config.cpus,
        memory=config.memory,
        extra=resources.split_lines(config.sbatch_extra),
        venv=config.venv,
        modules=tuple(config.modules.split()),
        conda_env=config.conda_env,
    )


@dataclass
class _Job:
    """One submitted step."""

    step: str
    job: StepJob
    files: script.JobScript
    job_id: str
    deps: set[str]
    submitted: float = field(default_factory=time.monotonic)
    state: str = ""
    log_offset: int = 0
    log_rest: str = ""
    ended_unaccounted: float | None = None  # when squeue showed the end sacct had not recorded


@dataclass(frozen=True)
class _Unit:
    """A step to submit: its template job, its producers and its resources."""

    step: str
    job: StepJob
    deps: set[str]
    resources: Mapping[str, Any]


class SlurmExecutor:
    name = "slurm"

    def __init__(
        self,
        config: SlurmConfig,
        cli: SlurmCli | None = None,
        console: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.cli = cli or SlurmCli(config.command_timeout, transport_for(config))
        self.files = self.cli.transport  # where the job files are: here or the login node
        self.local = Path(config.work_dir) if config.work_dir else None  # staging (offline)
        self.console = console
        self.clock = clock

    # ----------------------------------------------------------------- entry points
    def run(self, plan: Plan, steps: StepRunner) -> dict[str, StepOutcome]:
        units = [
            _Unit(
                name,
                replace(plan.template(name), tags={TAG_EXECUTOR: self.name}),
                set(plan.deps[name]),
                plan.pipeline.steps[name].resources,
            )
            for name in plan.order
        ]
        run_dir = f"{plan.pipeline.name}-{plan.pipeline_run}"
        return self.run_units(units, steps, run_dir)

    def run_units(
        self, units: list[_Unit], steps: StepRunner, run_dir: str
    ) -> dict[str, StepOutcome]:
        """Submit ``units`` (in dependency order) and wait for them; the outcome of each.

        Offline (``[slurm] offline``), a step is submitted once its producers have
        ended and their results are uploaded (its inputs are staged from them).
        """
        try:
            work = self._preflight() / run_dir
            self.files.mkdir(str(work))
            base = defaults(self.config)
            outcomes: dict[str, StepOutcome] = {}
            jobs: dict[str, _Job] = {}
            try:
                for unit in units:
                    self._submit_or_skip(unit, base, work, steps, outcomes, jobs)
                    if self.config.offline:
                        self._wait(jobs, outcomes, steps.ctx)
                self._wait(jobs, outcomes, steps.ctx)
            except (KeyboardInterrupt, Exception):
                # Ctrl-C, or a failure of this process: no submitted job is left running unseen
                self._cancel_all(jobs, outcomes, steps.ctx)
                raise
        finally:
            self.files.close()
        return outcomes

    # ----------------------------------------------------------------- submission
    def _preflight(self) -> Path:
        if self.config.host:
            remote = self.config.remote_work_dir
            if self.local is not None and not self.local.is_dir():
                raise BadInput(
                    f"[slurm] work_dir {self.local}: not a directory (with host it is the "
                    "local staging dir); create it or leave it empty (a temporary one)"
                )
            if not self.files.is_dir(remote):  # connects: a host key problem stops here
                raise BadInput(
                    f"[slurm] remote_work_dir {remote}: not a directory on {self.files.where}; "
                    "create it on the cluster's shared filesystem"
                )
            self.cli.check_installed()
            return Path(remote)
        if not self.config.work_dir:
            raise BadInput(
                "[slurm] work_dir (file or env MLPIPE_SLURM_WORK_DIR): not set; give a directory "
                "this host and the Slurm nodes share (a site's shared filesystem, e.g. "
                "/scratch/mlpipe): job files, outcomes and logs go there"
            )
        work = Path(self.config.work_dir)
        if not work.is_dir():
            raise BadInput(
                f"[slurm] work_dir {work}: not a directory; create it on the shared filesystem"
            )
        self.cli.check_installed()
        return work

    def _submit_or_skip(
        self,
        unit: _Unit,
        base: resources.Resources,
        work: Path,
        steps: StepRunner,
        outcomes: dict[str, StepOutcome],
        jobs: dict[str, _Job],
    ) -> None:
        step = unit.step
        bad = [d for d in unit.deps if d in outcomes and outcomes[d].status not in OK_STATUSES]
        if bad:
            outcomes[step] = StepOutcome(
                step, "blocked", summary=f"{', '.join(bad)} did not succeed"
            )
            return
        files = script.JobScript(
            pipeline=unit.job.pipeline,
            pipeline_run=unit.job.pipeline_run,
            step=step,
            work_dir=work,
            python=self.config.python,
            resources=base.with_step(unit.resources),
            env_file=self.config.env_file,
            upstream=[work / f"{d}.outcome.json" for d in sorted(unit.deps)],
        )
        job = unit.job
        if not any(d in jobs for d in unit.deps):  # every producer settled here
            try:
                skipped = steps.unchanged(unit.job.resolve(outcomes))
            except MlpipeError as exc:
                outcomes[step] = StepOutcome(
                    step, "failed", summary=str(exc), bad_input=isinstance(exc, BadInput)
                )
                return
            if skipped is not None:
                outcomes[step] = skipped
                self.files.write_text(str(files.outcome_file), skipped.to_json())
                self._say(f"{step}: unchanged, not submitted")
                return
        try:
            if self.config.offline:
                job, files = self._stage_offline(unit, files, outcomes, steps.ctx)
            self.files.remove(str(files.outcome_file))  # from an earlier attempt of this run dir
            self.files.write_text(str(files.job_file), job.to_json())
            self.files.write_text(str(files.path), script.render(files))
        except (TransportError, MlpipeError, OSError) as exc:
            outcomes[step] = StepOutcome(
                step,
                "failed",
                summary=f"step {step}: {exc}",
                bad_input=isinstance(exc, BadInput),
            )
            return
        after = [jobs[d].job_id for d in sorted(unit.deps) if d in jobs]
        try:
            job_id = self.cli.submit(str(files.path), after, cwd=str(work))
        except SlurmError as exc:
            outcomes[step] = StepOutcome(step, "failed", summary=f"step {step}: {exc}")
            return
        jobs[step] = _Job(step, job, files, job_id, set(unit.deps))
        wait = f" after job(s) {', '.join(after)}" if after else ""
        self._say(f"{step}: submitted as Slurm job {job_id}{wait} (log {files.log})")

    # ----------------------------------------------------------------- polling
    def _wait(
        self, jobs: Mapping[str, _Job], outcomes: dict[str, StepOutcome], ctx: TaskContext
    ) -> None:
        active = {s: j for s, j in jobs.items() if s not in outcomes}
        delay = self.config.poll_interval
        failing_since: float | None = None
        while active:
            try:
                states = self.cli.states([j.job_id for j in active.values()])
                failing_since = None
            except SlurmError as exc:
                failing_since = failing_since or self.clock()
                if self.clock() - failing_since > self.config.unknown_grace:
                    for step, job in active.items():
                        outcomes[step] = StepOutcome(
                            step,
                            "failed",
                            summary=f"step {step}: Slurm job {job.job_id}: cannot read its "
                            f"state for {self.config.unknown_grace:.0f}s ({exc}); the job may "
                            f"still run: check it with sacct -j {job.job_id}",
                        )
                    return
                self._say(f"slurm: {exc} (retrying)")
                states = {}
            changed = False
            for step, job in list(active.items()):
                if step not in active:  # cancelled below as a dependent
                    continue
                self._stream(job)
                state = states.get(job.job_id)
                if state is None:
                    if (
                        failing_since is None
                        and self.clock() - job.submitted > self.config.unknown_grace
                    ):
                        outcomes[step] = StepOutcome(
                            step,
                            "failed",
                            summary=f"step {step}: Slurm job {job.job_id} is known to neither "
                            f"sacct nor squeue after {self.config.unknown_grace:.0f}s",
                        )
                        del active[step]
                    continue
                if state.state != job.state:
                    job.state, changed = state.state, True
                    self._say(f"{step}: Slurm job {job.job_id} {state.detail or state.state}")
                if not state.terminal:
                    continue
                if state.source == "squeue":
                    # the job ended before slurmdbd recorded it (a busy controller): wait for
                    # sacct's exit code and elapsed time, up to unknown_grace, then go without
                    job.ended_unaccounted = job.ended_unaccounted or self.clock()
                    if self.clock() - job.ended_unaccounted < self.config.unknown_grace:
                        changed = True  # sacct has it within moments: poll again soon
                        continue
                self._stream(job, final=True)
                outcome = self._finish(job, state, ctx)
                outcomes[step] = outcome
                del active[step]
                if outcome.status not in OK_STATUSES:
                    self._block_dependents(step, active, outcomes)
            if active:
                time.sleep(delay)  # poll interval, backing off while nothing changes
                delay = (
                    self.config.poll_interval if changed else min(delay * 2, self.config.poll_max)
                )

    def _block_dependents(
        self, failed: str, active: dict[str, _Job], outcomes: dict[str, StepOutcome]
    ) -> None:
        down = {failed}
        grew = True
        while grew:
            more = {s for s, j in active.items() if j.deps & down and s not in down}
            grew = bool(more)
            down |= more
        down.discard(failed)
        ids = [active[s].job_id for s in sorted(down)]
        for step in sorted(down):
            outcomes[step] = StepOutcome(
                step,
                "blocked",
                summary=f"a dependency failed ({failed}); job {active[step].job_id} cancelled",
            )
            del active[step]
        if ids:
            try:
                self.cli.cancel(ids)  # Slurm cancels them too (--kill-on-invalid-dep)
            except SlurmError as exc:
                self._say(f"slurm: could not cancel the dependents of {failed}: {exc}")

    def _finish(self, job: _Job, state: JobState, ctx: TaskContext) -> StepOutcome:
        step, where = job.step, f"step {job.step}: Slurm job {job.job_id}"
        recorded: StepOutcome | None = None
        note = ""
        try:
            recorded = StepOutcome.from_json(
                self.files.read_text(str(job.files.outcome_file)), str(job.files.outcome_file)
            )
        except FileNotFoundError:
            pass
        except (OSError, BadInput, TransportError) as exc:
            note = f"; its outcome file is unreadable: {exc}"
        if (
            self.config.offline
            and state.state == "COMPLETED"
            and recorded is not None
            and recorded.status == "ran"
        ):
            try:
                recorded = self._upload_offline(job, recorded, ctx)
            except Exception as exc:  # noqa: BLE001 - reported as the step's failure
                return StepOutcome(
                    step,
                    "failed",
                    summary=f"{where} COMPLETED, but its results could not be uploaded "
                    f"({exc.__class__.__name__}: {exc}); they are kept in "
                    f"{self._offline_local(job.files)}/out and on the cluster in "
                    f"{self._offline_remote(job.files)}/out",
                )
        if state.state == "COMPLETED" and recorded is not None and recorded.status in OK_STATUSES:
            if recorded.status == "ran" and recorded.run_id:
                self._tag_run(recorded.run_id, job, state)
            return recorded
        if state.state == "COMPLETED" and recorded is not None:  # exit 0, yet not a success
            return replace(recorded, summary=f"{recorded.summary} ({where} COMPLETED)")
        if state.state == "COMPLETED":
            return StepOutcome(
                step,
                "failed",
                summary=f"{where} COMPLETED but wrote no outcome to {job.files.outcome_file}"
                f"{note} (is [slurm] work_dir shared with the nodes?)",
            )
        text = _STATE_TEXT.get(state.state, f"ended {state.state}")
        if state.state == "CANCELLED" and state.detail != "CANCELLED":
            text = f"was cancelled ({state.detail}) before it finished"
        exit_text = f", exit code {state.exit_code}" if state.exit_code else ""
        elapsed = f" after {state.elapsed}" if state.elapsed else ""
        tail = self._tail(job.files.log)
        log = f"; log {job.files.log}" + (f", last lines:\n{tail}" if tail else " (empty)")
        if recorded is not None and recorded.status == "failed":
            # the step itself failed and said why; the job failed because of it
            return StepOutcome(
                step,
                "failed",
                summary=f"{recorded.summary} ({where} {state.state}{exit_text})",
                bad_input=recorded.bad_input,
            )
        marked = self._mark_failed(job, state, ctx)
        return StepOutcome(
            step, "failed", summary=f"{where} {text}{elapsed}{exit_text}{note}{marked}{log}"
        )

    # ----------------------------------------------------------------- MLflow
    def _tag_run(self, run_id: str, job: _Job, state: JobState) -> None:
        import mlflow

        try:
            client = mlflow.MlflowClient()
            client.set_tag(run_id, TAG_JOB_ID, job.job_id)
            client.set_tag(run_id, TAG_STATE, state.state)
        except Exception as exc:  # noqa: BLE001 - the step succeeded; only the tags are missing
            self._say(f"{job.step}: could not tag MLflow run {run_id} with its Slurm job: {exc}")

    def _mark_failed(self, job: _Job, state: JobState, ctx: TaskContext) -> str:
        """Mark the step's unfinished MLflow runs FAILED with the Slurm tags; a note for errors."""
        import mlflow

        try:
            client = mlflow.MlflowClient()
            exp = client.get_experiment_by_name(job.job.experiment)
            if exp is None:
                return "; it started no MLflow run"
            runs = client.search_runs(
                [exp.experiment_id],
                filter_string=(
                    f"tags.`{TAG_PIPELINE_RUN}` = '{job.job.pipeline_run}' "
                    f"and tags.`{TAG_STEP}` = '{job.step}'"
                ),
            )
            marked = []
            for run in runs:
                client.set_tag(run.info.run_id, TAG_STATE, state.state)
                client.set_tag(run.info.run_id, TAG_JOB_ID, job.job_id)
                if run.info.status in ("RUNNING", "SCHEDULED"):
                    client.set_terminated(run.info.run_id, "FAILED")
                    marked.append(run.info.run_id)
        except Exception as exc:  # noqa: BLE001 - reported in the step's error, not swallowed
            return f"; its MLflow run could not be marked FAILED ({exc.__class__.__name__}: {exc})"
        if marked:
            return f"; MLflow run {', '.join(marked)} marked FAILED"
        return "; it started no MLflow run" if not runs else ""

    # ----------------------------------------------------------------- Ctrl-C
    def _cancel_all(
        self, jobs: Mapping[str, _Job], outcomes: Mapping[str, StepOutcome], ctx: TaskContext
    ) -> None:
        live = [j for s, j in jobs.items() if s not in outcomes]
        if not live:
            return
        ids = [j.job_id for j in live]
        self._say(f"interrupted: cancelling Slurm job(s) {', '.join(ids)}")  # Ctrl-C or an error
        try:
            self.cli.cancel(ids)
        except SlurmError as exc:
            self._say(f"slurm: {exc}; cancel them with scancel {' '.join(ids)}")
            return
        cancelled = JobState("", "CANCELLED")
        for job in live:
            self._mark_failed(job, cancelled, ctx)

    # ----------------------------------------------------------------- offline
    def _offline_local(self, files: script.JobScript) -> Path:
        if self.local is None:  # [slurm] host without work_dir
            self.local = Path(tempfile.mkdtemp(prefix="mlpipe-slurm-"))
        return self.local / files.work_dir.name / f"{files.step}.offline"

    def _offline_remote(self, files: script.JobScript) -> str:
        return f"{files.work_dir}/{files.step}.offline"

    def _stage_offline(
        self,
        unit: _Unit,
        files: script.JobScript,
        outcomes: Mapping[str, StepOutcome],
        ctx: TaskContext,
    ) -> tuple[StepJob, script.JobScript]:
        """The job with its inputs filled in and staged; the script with the offline env."""
        job = unit.job.resolve(outcomes)  # producers have ended and were uploaded
        slurm_offline.check_task(job)
        local, remote = self._offline_local(files), self._offline_remote(files)
        count = slurm_offline.stage_inputs(job, ctx.config, local / "in" / "cache")
        self.files.put_tree(local / "in", f"{remote}/in")
        self.files.mkdir(f"{remote}/out")
        self._say(f"{unit.step}: offline: {count} input file(s) staged to {remote}/in")
        env = slurm_offline.job_env(ctx.config, remote)
        return job, replace(files, upstream=(), env=env)

    def _upload_offline(self, job: _Job, outcome: StepOutcome, ctx: TaskContext) -> StepOutcome:
        local, remote = self._offline_local(job.files), self._offline_remote(job.files)
        self.files.get_tree(f"{remote}/out", local / "out")
        done = slurm_offline.upload(outcome, local / "out", f"{remote}/out", ctx.experiment_id)
        self._say(f"{job.step}: offline: run {outcome.run_id} uploaded as MLflow run {done.run_id}")
        return done

    # ----------------------------------------------------------------- console
    def _tail(self, path: Path) -> str:
        lines = self.config.log_tail
        try:
            text = self.files.read_text(str(path))
        except (OSError, TransportError):
            return ""
        return "\n".join(text.rstrip("\n").splitlines()[-lines:]) if lines else ""

    def _say(self, text: str) -> None:
        print(text, file=self.console or sys.stderr, flush=True)

    def _stream(self, job: _Job, final: bool = False) -> None:
        """Print the lines the job's log gained since the last call."""
        try:
            data = self.files.read_from(str(job.files.log), job.log_offset)
        except TransportError as exc:
            self._say(f"[{job.step} {job.job_id}] (log unreadable: {exc})")
            return
        if data is None:
            return
        job.log_offset += len(data)
        text = job.log_rest + data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        job.log_rest = "" if final else lines.pop()
        for line in lines:
            if line or not final:
                self._say(f"[{job.step} {job.job_id}] {line}")


# --------------------------------------------------------------------- one task
def add_via_argument(parser: argparse.ArgumentParser, spec: TaskSpec) -> None:
    """``mlpipe <task> ... --via slurm``: the task as one Slurm job (``[slurm]`` resources)."""
    parser.add_argument(
        "--via",
        choices=("local", "slurm"),
        default="local",
        help="run here (default) or as a Slurm job ([slurm] settings)",
    )
    local = parser.get_default("func")

    def run(args: argparse.Namespace) -> int:
        if args.via == "slurm":
            return run_task_via_slurm(spec, args)
        return int(local(args))

    parser.set_defaults(func=run)


def run_task_via_slurm(spec: TaskSpec, args: argparse.Namespace) -> int:
    """Submit the task as one job, wait, print its summary like the local command."""
    import json

    from mlpipe.tasks.context import TaskContext

    ctx = TaskContext.from_config()
    inputs, params = spec.from_args(args, ctx)
    run = uuid.uuid4().hex[:12]
    job = StepJob(
        pipeline=f"task-{spec.name}",
        step=spec.name,
        task=spec.name,
        experiment=args.experiment or ctx.config.pipeline.experiment,
        pipeline_run=run,
        inputs=dict(inputs),
        params=dict(params),
        force=True,  # a task command always runs
        tags={TAG_EXECUTOR: SlurmExecutor.name},
    )
    executor = SlurmExecutor(ctx.config.slurm)
    unit = _Unit(spec.name, job, set(), {})
    outcome = executor.run_units([unit], StepRunner(ctx, force=True), f"task-{spec.name}-{run}")
    result = outcome[spec.name]
    if result.status not in OK_STATUSES:
        raise (BadInput if result.bad_input else MlpipeError)(result.summary)
    print(f"{spec.name}: {result.summary}")
    print(f"{spec.name}: MLflow run {result.run_id}")
    if args.outputs_json:
        record = {"task": spec.name, "run_id": result.run_id, "outputs": result.outputs}
        args.outputs_json.write_text(json.dumps(record, indent=1) + "\n")
    return 0
