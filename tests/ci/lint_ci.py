"""Offline checks of the CI definitions (``make lint-ci``).

    python tests/ci/lint_ci.py [REPO]

1. Schemas: every ``.github/workflows/*.yml`` against the GitHub workflow schema (and
   the rule that every job has ``timeout-minutes``), ``.gitlab-ci.yml`` against
   GitLab's CI schema: check-jsonschema's built-in copies (``vendor.github-workflows``,
   ``custom.github-workflows-require-timeout``, ``vendor.gitlab-ci``), no network.
2. What a schema cannot say, each as one line ``FILE: where: what``:

   * GitHub: a top-level ``permissions:``; no ``pull_request_target``; no
     ``secrets.`` in a workflow that pull requests trigger; no ``actions/checkout``
     in a ``workflow_run`` workflow (it runs with the base repository's token: the PR's
     code must not run there); no ``${{ }}`` inside a ``run:`` script (values go
     through ``env:``, so nothing is spliced into shell source); ``uses:`` names a
     version (``@v4``, a tag or a commit), not a branch;
   * GitLab: ``stages:`` lists every job's stage (a job without one is in ``test``),
     every job has ``script`` (or ``trigger``), ``needs``/``dependencies`` name jobs
     that exist;
   * both: every ``run:``/``script`` passes shellcheck (as bash), and every ``.ci/``
     file a script names exists.

Exit 0 when all pass, else 1 after printing every problem.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

GITHUB_SCHEMAS = ("vendor.github-workflows", "custom.github-workflows-require-timeout")
GITLAB_SCHEMA = "vendor.gitlab-ci"
# top-level keys of .gitlab-ci.yml that are not jobs
GITLAB_KEYWORDS = frozenset(
    {"default", "include", "stages", "variables", "workflow", "image", "services", "cache"}
    | {"before_script", "after_script", "pages_deploy_hidden", "spec"}
)
BRANCH_REFS = frozenset({"main", "master", "develop", "dev", "HEAD", "trunk", "latest"})
EXPRESSION = re.compile(r"\$\{\{")
CI_FILE = re.compile(r"(?<![\w/.])\.ci/[A-Za-z0-9_.\-]+")


def _bin(name: str) -> str:
    """``name`` from this Python's venv, else from PATH."""
    beside = Path(os.path.abspath(sys.executable)).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def schema_problems(checks: list[tuple[str, list[Path]]]) -> list[str]:
    """check-jsonschema's complaints: ``(built-in schema, files)`` each, run side by side."""
    running = [
        (
            builtin,
            subprocess.Popen(
                [_bin("check-jsonschema"), "--builtin-schema", builtin, "-o", "text"]
                + [str(f) for f in files],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for builtin, files in checks
        if files
    ]
    problems = []
    for builtin, proc in running:
        out, _ = proc.communicate()
        if proc.returncode == 0:
            continue
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("Schema validation errors were")]
        problems += [f"schema {builtin}: {ln}" for ln in lines] or [
            f"schema {builtin}: check-jsonschema exited {proc.returncode}"
        ]
    return problems


def shellcheck_problems(where: str, script: str) -> list[str]:
    """shellcheck's findings (warnings and errors) for one script, as bash."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as fh:
        fh.write(script)
        path = fh.name
    try:
        proc = subprocess.run(
            ["shellcheck", "-s", "bash", "-S", "warning", "-f", "gcc", path],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return [f"{where}: shellcheck is not installed (Debian package shellcheck)"]
    finally:
        os.unlink(path)
    if proc.returncode == 0:
        return []
    found = [ln.split(":", 3)[-1].strip() for ln in proc.stdout.splitlines() if ln.strip()]
    return [f"{where}: shellcheck: {f}" for f in found] or [f"{where}: shellcheck failed"]


def ci_file_problems(repo: Path, where: str, script: str) -> list[str]:
    return [
        f"{where}: names {m} which does not exist"
        for m in sorted(set(CI_FILE.findall(script)))
        if not (repo / m).is_file()
    ]


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"not YAML: {exc}") from None


def _triggers(doc: dict[Any, Any]) -> set[str]:
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return {str(t) for t in on}
    if isinstance(on, dict):
        return {str(t) for t in on}
    return set()


def _steps(doc: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in (doc.get("jobs") or {}).items():
        if not isinstance(job, dict):
            continue
        for i, step in enumerate(job.get("steps") or []):
            if isinstance(step, dict):
                name = step.get("name") or step.get("uses") or f"step {i + 1}"
                yield f"jobs.{job_id}: {name}", step


def github_problems(repo: Path, path: Path) -> list[str]:
    try:
        doc = _load(path)
    except ValueError as exc:
        return [str(exc)]
    if not isinstance(doc, dict):
        return ["not a workflow (a mapping expected)"]
    problems = []
    triggers = _triggers(doc)
    text = path.read_text(encoding="utf-8")
    if "permissions" not in doc:
        problems.append("no top-level permissions: (the token would get the repository default)")
    if "pull_request_target" in triggers:
        problems.append(
            "pull_request_target: runs the PR with the base repository's token; use "
            "pull_request, and workflow_run for what needs write access"
        )
    if "pull_request" in triggers and re.search(r"\bsecrets\.", text):
        problems.append("uses secrets. in a workflow that pull requests trigger")
    for where, step in _steps(doc):
        uses = str(step.get("uses") or "")
        if uses and not uses.startswith(("./", "docker://")):
            ref = uses.rpartition("@")[2] if "@" in uses else ""
            if not ref or ref in BRANCH_REFS:
                problems.append(f"{where}: uses {uses!r}: name a version (@v4, a tag, a commit)")
        if "workflow_run" in triggers and uses.startswith("actions/checkout@"):
            problems.append(
                f"{where}: checks out code in a workflow_run workflow (the PR's code must not "
                "run with the base repository's token)"
            )
        script = step.get("run")
        if isinstance(script, str):
            if EXPRESSION.search(script):
                problems.append(f"{where}: ${{{{ }}}} in run: pass the value through env:")
            problems += shellcheck_problems(where, script)
            problems += ci_file_problems(repo, where, script)
    return problems


def _script_lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [line for item in value for line in _script_lines(item)]
    return []


def gitlab_problems(repo: Path, path: Path) -> list[str]:
    try:
        doc = _load(path)
    except ValueError as exc:
        return [str(exc)]
    if not isinstance(doc, dict):
        return ["not a pipeline (a mapping expected)"]
    problems = []
    stages = doc.get("stages")
    if not isinstance(stages, list) or not stages:
        problems.append("stages: must list the stages")
        stages = []
    jobs = {
        str(k): v
        for k, v in doc.items()
        if str(k) not in GITLAB_KEYWORDS and not str(k).startswith(".") and isinstance(v, dict)
    }
    if not jobs:
        problems.append("no job")
    for name, job in jobs.items():
        where = f"job {name}"
        stage = job.get("stage", "test")
        if stage not in stages and stage not in (".pre", ".post"):
            problems.append(f"{where}: stage {stage!r} is not in stages {stages}")
        if "script" not in job and "trigger" not in job and "extends" not in job:
            problems.append(f"{where}: has no script")
        for key in ("needs", "dependencies"):
            for need in job.get(key) or []:
                needed = need.get("job") if isinstance(need, dict) else need
                if needed not in jobs:
                    problems.append(f"{where}: {key} names {needed!r}, which is not a job")
        for key in ("before_script", "script", "after_script"):
            lines = _script_lines(job.get(key))
            if lines:
                script = "\n".join(lines) + "\n"
                problems += shellcheck_problems(f"{where}: {key}", script)
                problems += ci_file_problems(repo, f"{where}: {key}", script)
    return problems


def check(repo: Path) -> list[str]:
    """Every problem of the repository's CI definitions, as ``FILE: problem`` lines."""
    workflows = sorted((repo / ".github" / "workflows").glob("*.y*ml"))
    gitlab = repo / ".gitlab-ci.yml"
    checks = [(builtin, workflows) for builtin in GITHUB_SCHEMAS]
    checks.append((GITLAB_SCHEMA, [gitlab] if gitlab.exists() else []))
    problems = schema_problems(checks)
    for wf in workflows:
        problems += [f"{wf.relative_to(repo)}: {p}" for p in github_problems(repo, wf)]
    if gitlab.exists():
        problems += [f".gitlab-ci.yml: {p}" for p in gitlab_problems(repo, gitlab)]
    return problems


def main(argv: list[str]) -> int:
    repo = Path(argv[0] if argv else Path(__file__).resolve().parents[2]).resolve()
    workflows = sorted((repo / ".github" / "workflows").glob("*.y*ml"))
    problems = check(repo)
    for problem in problems:
        print(f"lint-ci: {problem}", file=sys.stderr)
    gitlab = ", .gitlab-ci.yml" if (repo / ".gitlab-ci.yml").exists() else ""
    what = f"{len(workflows)} GitHub workflow(s){gitlab}"
    if problems:
        print(f"lint-ci: {len(problems)} problem(s) in {what}", file=sys.stderr)
        return 1
    print(f"lint-ci: {what}: schemas, permissions, scripts (shellcheck): ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
