"""One step of a pipeline run: skip it if unchanged since its last success, else run it.

A :class:`StepJob` is plain data (JSON round trip), so executors can ship it
to another node and run it there::

    python -m mlpipe.pipeline.step JOB.json OUTCOME.json [--upstream PRODUCER.json ...]

A job made by :meth:`Plan.template` names its inputs as producer outputs
(``inputs_from``) instead of values; on the node they are filled in from the
producers' outcome files (``--upstream``) by :meth:`StepJob.resolve`. The
outcome file is written (atomically) whether the step succeeds or fails, so a
remote executor always learns the step's status and error message from it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlpipe.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    BadInput,
    MlpipeError,
    exit_code,
)
from mlpipe.tasks.registry import get_spec

if TYPE_CHECKING:
    from mlpipe.tasks.context import TaskContext

TAG_PIPELINE = "mlpipe.pipeline"
TAG_STEP = "mlpipe.step"
TAG_HASH = "mlpipe.hash"
TAG_PIPELINE_RUN = "mlpipe.pipeline_run"

StepStatus = Literal["ran", "skipped", "failed", "blocked"]
STATUSES: tuple[StepStatus, ...] = ("ran", "skipped", "failed", "blocked")
OK_STATUSES: tuple[StepStatus, ...] = ("ran", "skipped")


@dataclass(frozen=True)
class StepJob:
    pipeline: str
    step: str
    task: str
    experiment: str
    pipeline_run: str
    inputs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    force: bool = False
    # input slot -> [producer step, producer output slot]: filled in by resolve()
    inputs_from: dict[str, list[str]] = field(default_factory=dict)
    # extra tags on every MLflow run the step starts (executor, session or job id)
    tags: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def resolve(self, upstream: Mapping[str, StepOutcome]) -> StepJob:
        """This job with ``inputs`` filled from its producers' outcomes.

        BadInput naming the step when a producer's outcome is missing or the
        producer did not succeed (ran or skipped).
        """
        inputs = dict(self.inputs)
        for slot, (producer, out_slot) in self.inputs_from.items():
            outcome = upstream.get(producer)
            if outcome is None:
                raise BadInput(
                    f"step {self.step}: input {slot!r} comes from step {producer}, "
                    f"but no outcome of {producer} was given (--upstream)"
                )
            if outcome.status not in OK_STATUSES:
                raise BadInput(
                    f"step {self.step}: input {slot!r} comes from step {producer}, "
                    f"which {outcome.status}: {outcome.summary}"
                )
            if out_slot not in outcome.outputs:
                raise BadInput(
                    f"step {self.step}: step {producer} recorded no output {out_slot!r} "
                    f"(it has: {', '.join(sorted(outcome.outputs)) or 'none'})"
                )
            inputs[slot] = outcome.outputs[out_slot]
        return replace(self, inputs=inputs, inputs_from={})

    @classmethod
    def from_json(cls, text: str, where: str = "job") -> StepJob:
        """The job in ``text``; BadInput naming ``where`` if it is not a job."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise BadInput(
                f"{where}: not JSON ({exc}); give a file written by StepJob.to_json"
            ) from None
        names = {f.name for f in fields(cls)}
        if not isinstance(doc, dict) or not {"pipeline", "step", "task"} <= set(doc) <= names:
            raise BadInput(f"{where}: not a step job; expected the keys {', '.join(sorted(names))}")
        return cls(**doc)


def _load(text: str, where: str, what: str, required: set[str], names: set[str]) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{where}: not JSON ({exc}); give a file written by {what}") from None
    if not isinstance(doc, dict) or not required <= set(doc) <= names:
        raise BadInput(f"{where}: not a {what} file; expected the keys {', '.join(sorted(names))}")
    return doc


@dataclass(frozen=True)
class StepOutcome:
    step: str
    status: StepStatus
    run_id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    bad_input: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str, where: str = "outcome") -> StepOutcome:
        """The outcome in ``text``; BadInput naming ``where`` if it is not one."""
        names = {f.name for f in fields(cls)}
        doc = _load(text, where, "step outcome", {"step", "status"}, names)
        if doc["status"] not in STATUSES:
            raise BadInput(f"{where}: status {doc['status']!r} is not one of {', '.join(STATUSES)}")
        return cls(**doc)


def _hash(job: StepJob, ctx: TaskContext) -> str:
    """The skip key of ``job``; MLflow failures other than "not found" raise (fail closed)."""
    import mlflow

    from mlpipe.pipeline.fingerprint import sources_digest, step_hash
    from mlpipe.tasks import modelref

    client = mlflow.MlflowClient()
    spec = get_spec(job.task)

    def resolve_model(text: str) -> str:
        try:
            return modelref.resolve(client, modelref.parse(text, ctx.config.model.alias)).uri
        except BadInput:  # no such model/version/alias (only that): the task reports it
            return f"unresolved:{text}"

    extra: dict[str, Any] = {"plugin": ctx.config.model.plugin}
    named = job.inputs.get("model") or job.params.get("model")
    if spec.default_model and not named:
        # the default model is an alias: its current version is part of the input
        extra["model"] = resolve_model(modelref.default_model(ctx.config.model))
    if spec.local_sources:
        sources = job.params.get("sources") or []
        sources = [sources] if isinstance(sources, str) else list(sources)
        extra["sources"] = sources_digest(sources, Path(job.params.get("base_dir") or "."))
    for param in spec.ngas_params:
        if job.params.get(param):
            extra[f"ngas:{param}"] = _ngas_listing(ctx, job.params[param])
    return step_hash(job.task, job.params, job.inputs, resolve_model, extra)


def _ngas_listing(ctx: TaskContext, value: Any) -> Any:
    """``[[id, checksum]]`` of the NGAS files named by ``value`` now (ids, prefixes ending /).

    A prefix with no files or an unknown id is left to the task to report; an
    NGAS failure raises (the step is neither skipped nor run on an unknown listing).
    """
    from mlpipe.tasks.filesets import resolve

    specs = [value] if isinstance(value, str) else value
    if not isinstance(specs, list) or not all(isinstance(s, str) and s for s in specs):
        return f"unresolved:{specs}"
    try:
        files = resolve(ctx.ngas, specs, "listing")
    except BadInput:
        return f"unresolved:{specs}"
    return [[f["id"], str(f.get("checksum", ""))] for f in files]


def last_success(job: StepJob, digest: str, ctx: TaskContext) -> str | None:
    """Run id of the newest FINISHED run of this step with this hash, if any."""
    import mlflow

    found = mlflow.MlflowClient().search_runs(
        [ctx.experiment_id(job.experiment)],
        filter_string=(
            f"tags.`{TAG_PIPELINE}` = '{job.pipeline}' and tags.`{TAG_STEP}` = '{job.step}' "
            f"and tags.`{TAG_HASH}` = '{digest}' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return str(found[0].info.run_id) if found else None


def _check(job: StepJob, ctx: TaskContext) -> tuple[str, StepOutcome | None]:
    """The step's hash, and a ``skipped`` outcome if its last success had that hash."""
    from mlpipe.tasks.mlflow_errors import as_mlpipe_errors
    from mlpipe.tasks.runs import read_outputs

    if job.inputs_from:
        raise BadInput(f"step {job.step}: resolve the job's inputs before running it")
    with as_mlpipe_errors(f"step {job.step}: looking for an unchanged earlier run"):
        digest = _hash(job, ctx)
        previous = None if job.force else last_success(job, digest, ctx)
        if previous:
            outputs = read_outputs(previous)
            return digest, StepOutcome(
                job.step, "skipped", previous, outputs, "unchanged since this run"
            )
    return digest, None


def unchanged(job: StepJob, ctx: TaskContext) -> StepOutcome | None:
    """A ``skipped`` outcome if the step is unchanged since its last success, else None.

    For executors that decide on the controller what to submit; MLflow errors
    other than "not found" raise (fail closed).
    """
    return _check(job, ctx)[1]


def run_step(job: StepJob, ctx: TaskContext) -> StepOutcome:
    """Skip (reusing the recorded outputs) or run the step's task; raises on failure."""
    from mlpipe.tasks.registry import run_task

    digest, skipped = _check(job, ctx)
    if skipped is not None:
        return skipped
    tags = {
        **job.tags,
        TAG_PIPELINE: job.pipeline,
        TAG_STEP: job.step,
        TAG_HASH: digest,
        TAG_PIPELINE_RUN: job.pipeline_run,
    }
    result = run_task(
        job.task, job.inputs, job.params, ctx=ctx, tags=tags, experiment=job.experiment
    )
    return StepOutcome(job.step, "ran", result.run_id, result.outputs, result.summary)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mlpipe.pipeline.step",
        description="Run one pipeline step from a job file (the form remote executors ship).",
    )
    p.add_argument("job", help="job file (StepJob.to_json)")
    p.add_argument(
        "outcome", nargs="?", help="write the outcome here, also on failure (default: stdout)"
    )
    p.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="OUTCOME.json",
        help="outcome file of a producer step (repeat); fills the job's inputs_from",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m mlpipe.pipeline.step JOB.json [OUTCOME.json] [--upstream F ...]``.

    Exit code 0 ok, 1 failed, 2 bad input; the error also on stderr.
    """
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    prog = f"step {args.job}"
    step = Path(args.job).stem
    try:
        job = _read_job(args.job)
        step = job.step
        upstream = {o.step: o for o in map(_read_outcome, args.upstream)}
        outcome = _run_resolved(job.resolve(upstream))
        code = 0
    except (MlpipeError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        code = exit_code(exc)
        outcome = StepOutcome(step, "failed", summary=str(exc), bad_input=code == EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        _write_outcome(args.outcome, StepOutcome(step, "failed", summary="interrupted"))
        return EXIT_INTERRUPTED
    _write_outcome(args.outcome, outcome)
    return code


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise BadInput(f"cannot read the {what} file: {exc}") from None


def _read_job(path: str) -> StepJob:
    return StepJob.from_json(_read_text(path, "job"), path)


def _read_outcome(path: str) -> StepOutcome:
    return StepOutcome.from_json(_read_text(path, "upstream outcome"), path)


def _run_resolved(job: StepJob) -> StepOutcome:
    from mlpipe.tasks.context import TaskContext

    ctx = TaskContext.from_config()
    return run_step(job, ctx)


def _write_outcome(path: str | None, outcome: StepOutcome) -> None:
    """Print the outcome, or write it to ``path`` atomically (rename of a sibling)."""
    text = outcome.to_json()
    if path is None:
        print(text)
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, target)
    except OSError as exc:
        print(f"step: cannot write the outcome file {path}: {exc}", file=sys.stderr)
        tmp.unlink(missing_ok=True)
        raise SystemExit(EXIT_FAILED) from None


if __name__ == "__main__":
    sys.exit(main())
