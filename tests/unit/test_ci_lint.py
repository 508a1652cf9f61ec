"""``make lint-ci`` (tests/ci/lint_ci.py): the repository's CI definitions pass, and each
kind of mistake in a copy of them is reported naming the file and the place."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "ci"))
import lint_ci  # noqa: E402

PR = ".github/workflows/pull-request.yml"
COMMENT = ".github/workflows/pr-comment.yml"
CI = ".github/workflows/ci.yml"
GITLAB = ".gitlab-ci.yml"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The CI definitions and the .ci/ scripts they name, in a repository of their own."""
    for rel in (".github", ".ci"):
        shutil.copytree(REPO / rel, tmp_path / rel)
    shutil.copy(REPO / GITLAB, tmp_path / GITLAB)
    return tmp_path


def edit(repo: Path, rel: str, change: Callable[[str], str]) -> None:
    path = repo / rel
    before = path.read_text()
    after = change(before)
    assert after != before, f"the edit of {rel} changed nothing"
    path.write_text(after)


def test_the_repository_ci_definitions_pass(capsys) -> None:
    assert lint_ci.main([str(REPO)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "3 GitHub workflow(s), .gitlab-ci.yml" in out


# (file, text, its replacement, what lint-ci says): applied together to one copy (they touch
# different lines), every one reported
MISTAKES = [
    # the schemas
    (CI, "    runs-on: ubuntu-24.04\n", "", "schema vendor.github-workflows"),
    (CI, "    timeout-minutes: 150\n", "", "schema custom.github-workflows-require-timeout"),
    (
        GITLAB,
        "  stage: lint\n",
        "  stage: lint\n  when: sometimes\n",
        "schema vendor.gitlab-ci",
    ),
    # GitHub
    (PR, "permissions:\n  contents: read\n\n", "", f"{PR}: no top-level permissions:"),
    (
        PR,
        "          PR_NUMBER: ${{ github.event.pull_request.number }}\n",
        "          PR_NUMBER: ${{ secrets.TOKEN }}\n",
        f"{PR}: uses secrets. in a workflow that pull requests trigger",
    ),
    (
        PR,
        """printf '%s\\n' "$PR_NUMBER" """,
        "printf '%s\\n' ${{ github.event.pull_request.title }} ",
        f"{PR}: jobs.model-report: Name the pull request the report is for: ${{{{ }}}} in run",
    ),
    (
        COMMENT,
        "    steps:\n",
        "    steps:\n      - uses: actions/checkout@v4\n",
        f"{COMMENT}: jobs.comment: actions/checkout@v4: checks out code in a workflow_run",
    ),
    (
        CI,
        "      - uses: actions/checkout@v4\n",
        "      - uses: actions/checkout@main\n",
        f"{CI}: jobs.make-test: actions/checkout@main: uses 'actions/checkout@main'",
    ),
    (
        CI,
        'if [ "$CACHE_HIT" != true ]; then',
        'if [ "$CACHE_HIT" != true ] then',
        f"{CI}: jobs.make-test: Load or build the base image (ansible/scripts/build-base-image."
        "sh): shellcheck:",
    ),
    (
        PR,
        "python3 .ci/model_report.py",
        "python3 .ci/model-report.py",
        "names .ci/model-report.py which does not exist",
    ),
    # GitLab
    (GITLAB, "stages: [lint, test, report]", "stages: [lint, test]", "job model-report: stage"),
    (GITLAB, "  script:\n    - make lint\n", "", ".gitlab-ci.yml: job lint: has no script"),
    (
        GITLAB,
        "  needs: [model-report]\n",
        "  needs: [model-reports]\n",
        "job mr-note: needs names 'model-reports', which is not a job",
    ),
    (
        GITLAB,
        "    - bash .ci/run\n",
        "    - bash .ci/run\n    - if [ -f x ]; then echo\n",
        ".gitlab-ci.yml: job make-test: script: shellcheck:",
    ),
]


def test_every_mistake_is_reported_where_it_is(copy: Path, capsys) -> None:
    for rel, old, new, _ in MISTAKES:
        edit(copy, rel, lambda text, old=old, new=new: text.replace(old, new, 1))
    assert lint_ci.main([str(copy)]) == 1
    err = capsys.readouterr().err
    missing = [said for _, _, _, said in MISTAKES if said not in err]
    assert not missing, (missing, err)
    assert err.strip().splitlines()[-1].startswith("lint-ci: ")


def test_pull_request_target_is_refused(copy: Path, capsys) -> None:
    edit(copy, PR, lambda text: text.replace("  pull_request:\n", "  pull_request_target:\n", 1))
    assert lint_ci.main([str(copy)]) == 1
    assert f"{PR}: pull_request_target: runs the PR" in capsys.readouterr().err


def test_not_yaml_is_reported(copy: Path, capsys) -> None:
    (copy / GITLAB).write_text("stages: [lint\n")
    assert lint_ci.main([str(copy)]) == 1
    assert ".gitlab-ci.yml: not YAML" in capsys.readouterr().err
