"""The node side of ``--executor daliuge``: what a step's application drop runs on a worker.

The drop's command (made by :func:`mlpipe.pipeline.executors.daliuge.physical_graph`)::

    PYTHON -m mlpipe.pipeline.executors.daliuge_node JOB_B64 {out_<step>} \\
        [--upstream {out_<producer>}] [--fetch URL] [--known OUTCOME_B64] \\
        [--config FILE] [--env-file FILE] [--work-dir DIR] 2> {err_<step>}; ...

It writes the job (base64 of ``StepJob.to_json``, so no quoting or ``{uid}``
placeholder can touch it) into the work directory, gathers the producers'
outcome files (a drop on this node: ``--upstream`` path; a drop on another
node: ``--fetch`` from that node manager's REST API, DALiuGE 6.6 cannot read a
remote file drop; a producer the controller skipped as unchanged: ``--known``),
then runs ``python -m mlpipe.pipeline.step JOB OUTCOME --upstream ...`` with
``MLPIPE_CONFIG=FILE`` and the ``KEY=value`` lines of the env file added to its
environment. Its exit code is the step's (0 ok, 1 failed, 2 bad input). When it
fails before the step could write one, it writes the failed outcome itself.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from mlpipe.errors import EXIT_BAD_INPUT, EXIT_FAILED, BadInput, MlpipeError, exit_code
from mlpipe.pipeline.step import StepJob, StepOutcome

MODULE = "mlpipe.pipeline.executors.daliuge_node"
TAG_EXECUTOR = "mlpipe.executor"
TAG_SESSION = "mlpipe.daliuge.session"


def encode(text: str) -> str:
    """URL-safe base64 of ``text`` (a shell word with no quotes, braces or spaces)."""
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode(word: str, what: str) -> str:
    """``word`` decoded; a word that already is JSON (exported logical graphs) as it is."""
    if word.lstrip().startswith("{"):
        return word
    try:
        return base64.urlsafe_b64decode(word.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"{what}: not base64 of JSON ({exc})") from None


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines as systemd reads an EnvironmentFile (no ``$`` expansion).

    Blank lines and ``#`` comments are skipped; a value in double quotes has
    ``\\"`` and ``\\\\`` unescaped, one in single quotes is taken as is.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(
            f"[daliuge] env_file {path}: cannot read it on this worker ({exc}); "
            'set env_file to a file the node manager\'s user can read, or to ""'
        ) from None
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum() or key[0].isdigit():
            raise BadInput(f"[daliuge] env_file {path}:{number}: expected KEY=value, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        env[key] = value
    return env


def _fetch(url: str, dest: Path, timeout: float) -> None:
    import requests

    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        raise MlpipeError(
            f"cannot fetch a producer's outcome from {url} ({exc.__class__.__name__}: {exc}); "
            "is that node manager running and reachable from this worker?"
        ) from None
    if response.status_code != 200:
        raise MlpipeError(
            f"cannot fetch a producer's outcome from {url}: HTTP {response.status_code} "
            f"{response.text[:200]}"
        )
    StepOutcome.from_json(response.text, url)  # a real outcome, or BadInput naming the URL
    _write(dest, response.text)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    p.add_argument("job", help="the step job, base64 of StepJob.to_json")
    p.add_argument("outcome", help="write the step's outcome here (the outcome drop)")
    p.add_argument("--upstream", action="append", default=[], help="a producer's outcome file")
    p.add_argument("--fetch", action="append", default=[], help="URL of a producer's outcome")
    p.add_argument("--known", action="append", default=[], help="base64 of a producer's outcome")
    p.add_argument("--config", default="", help="MLPIPE_CONFIG for the step")
    p.add_argument("--env-file", default="", help="KEY=value lines added to the environment")
    p.add_argument("--work-dir", default="", help="job files here (default: the outcome's dir)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per fetch")
    return p


def _prepare(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The step's command line and environment, with its files written."""
    job = StepJob.from_json(decode(args.job, "job"), "job argument")
    session = os.environ.get("DLG_SESSION_ID", "session")
    if TAG_SESSION not in job.tags and "DLG_SESSION_ID" in os.environ:
        job = replace(job, tags={**job.tags, TAG_SESSION: session})
    work = Path(args.work_dir) / session if args.work_dir else Path(args.outcome).parent
    work.mkdir(parents=True, exist_ok=True)
    job_file = work / f"{job.step}.job.json"
    _write(job_file, job.to_json())
    upstream = list(args.upstream)
    for n, word in enumerate(args.known):
        text = decode(word, "--known")
        outcome = StepOutcome.from_json(text, "--known")
        upstream.append(str(work / f"{job.step}.known.{outcome.step}.{n}.json"))
        _write(Path(upstream[-1]), text)
    for n, url in enumerate(args.fetch):
        upstream.append(str(work / f"{job.step}.fetched.{n}.json"))
        _fetch(url, Path(upstream[-1]), args.timeout)
    env = dict(os.environ)
    if args.env_file:
        env.update(read_env_file(Path(args.env_file)))
    if args.config:
        env["MLPIPE_CONFIG"] = args.config
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    cmd = [sys.executable, "-m", "mlpipe.pipeline.step", str(job_file), args.outcome]
    for path in upstream:
        cmd += ["--upstream", path]
    return cmd, env


def _step_name(word: str) -> str:
    try:
        return StepJob.from_json(decode(word, "job"), "job argument").step
    except BadInput:
        return os.environ.get("DLG_UID", "step").removeprefix("app_")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cmd, env = _prepare(args)
    except (MlpipeError, OSError) as exc:
        code = exit_code(exc)
        message = f"on worker {os.uname().nodename}: {exc}"
        print(f"{MODULE}: {message}", file=sys.stderr)
        step = _step_name(args.job)
        _write(
            Path(args.outcome),
            StepOutcome(
                step, "failed", summary=message, bad_input=code == EXIT_BAD_INPUT
            ).to_json(),
        )
        return code
    proc = subprocess.run(cmd, env=env, check=False)
    if proc.returncode < 0 or not Path(args.outcome).is_file() or not os.path.getsize(args.outcome):
        how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else "no outcome"
        job = StepJob.from_json(Path(cmd[4]).read_text(), cmd[4])
        message = f"the step process ended with {how} on worker {os.uname().nodename}"
        _write(Path(args.outcome), StepOutcome(job.step, "failed", summary=message).to_json())
        return EXIT_FAILED
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
