"""The one NGAS source check (roles/ngas/tasks/source.yml), run by real ansible-playbook.

Every case runs the entry point `make up` and site.yml run first,
``ansible/ngas-preflight.yml``, on this machine against a git repository, a
plain source tree and NGAS servers made here (the NGAS protocol double, one
answering 503, a web server that is not NGAS). The ngas role's own preflight
is checked to run the same check. Results are read from Ansible's json
callback: which task failed, its message, and the changed count.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ngas_double import NgasDouble

TOP = Path(__file__).resolve().parents[2]
PLAYBOOK = TOP / "ansible" / "ngas-preflight.yml"


@dataclass(frozen=True)
class Run:
    """One ansible-playbook run: rc, the failed tasks' messages, the changes."""

    rc: int
    failures: list[str]
    changed: int
    debug: list[str]

    @property
    def message(self) -> str:
        return " ".join(" ".join(m.split()) for m in self.failures)


def ansible_playbook(playbook: Path, extra_vars: dict[str, str], workdir: Path) -> Run:
    cfg = workdir / "ansible.cfg"
    cfg.write_text(f"[defaults]\nroles_path = {TOP / 'roles'}\ninterpreter_python = auto_silent\n")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    proc = subprocess.run(
        [
            str(TOP / ".venv" / "bin" / "ansible-playbook"),
            str(playbook),
            "-e",
            json.dumps(extra_vars),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    try:
        out: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"ansible-playbook gave no json (rc {proc.returncode}): {proc.stdout}\n{proc.stderr}"
        )
    results = [
        result
        for play in out["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
    ]
    return Run(
        rc=proc.returncode,
        failures=[str(r.get("msg", r)) for r in results if r.get("failed")],
        changed=sum(s["changed"] for s in out["stats"].values()),
        debug=[
            str(r["msg"]) for r in results if r.get("action", "").endswith("debug") and "msg" in r
        ],
    )


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@dataclass(frozen=True)
class Sources:
    checkout: Path
    tag: str
    commit: str
    tree: Path
    not_ngas: Path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """An NGAS-like git checkout with a tag and two commits, and a plain tree."""
    root = tmp_path_factory.mktemp("ngas-sources")
    checkout = root / "checkout"
    (checkout / "src" / "ngamsServer").mkdir(parents=True)
    (checkout / "src" / "ngamsServer" / "setup.py").write_text("# NGAS server\n")
    git("-c", "init.defaultBranch=master", "init", "-q", cwd=checkout)
    git("add", ".", cwd=checkout)
    git("commit", "-q", "-m", "12.0", cwd=checkout)
    git("tag", "v12.0", cwd=checkout)
    (checkout / "CHANGES").write_text("after 12.0\n")
    git("add", ".", cwd=checkout)
    git("commit", "-q", "-m", "after 12.0", cwd=checkout)
    commit = git("rev-parse", "HEAD", cwd=checkout)  # no ref points at it but master
    git("commit", "-q", "--allow-empty", "-m", "tip", cwd=checkout)
    tree = root / "tree"
    (tree / "src" / "ngamsServer").mkdir(parents=True)
    (tree / "src" / "ngamsServer" / "setup.py").write_text("# NGAS server\n")
    not_ngas = root / "not-ngas"
    not_ngas.mkdir()
    return Sources(checkout, "v12.0", commit, tree, not_ngas)


class _NotNgas(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"<html>a web server, not NGAS</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@dataclass(frozen=True)
class Servers:
    ngas: str
    ngas_503: str
    not_ngas: str
    closed: str


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    online = NgasDouble(tmp_path_factory.mktemp("ngas-online")).start()
    failing = NgasDouble(tmp_path_factory.mktemp("ngas-503")).start()
    failing.faults.fail_5xx = 1000
    web = ThreadingHTTPServer(("127.0.0.1", 0), _NotNgas)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    with socket.socket() as s:  # a port nobody listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
        try:
            yield Servers(
                online.url, failing.url, f"http://127.0.0.1:{web.server_address[1]}", closed
            )
        finally:
            online.stop()
            failing.stop()
            web.shutdown()
            web.server_close()


def preflight(tmp_path: Path, **extra_vars: str) -> Run:
    return ansible_playbook(PLAYBOOK, extra_vars, tmp_path)


# ---- accepted: each case passes the preflight and changes nothing ----------


@pytest.mark.parametrize(
    "version",
    ["tag", "commit", "short-commit", "branch"],
)
def test_checkout_accepts_tag_branch_and_commit(
    tmp_path: Path, sources: Sources, version: str
) -> None:
    ref = {
        "tag": sources.tag,
        "commit": sources.commit,
        "short-commit": sources.commit[:10],
        "branch": "master",
    }[version]
    run = preflight(tmp_path, ngas_source=str(sources.checkout), ngas_version=ref)
    assert run.rc == 0, run.message
    assert run.changed == 0
    resolved = git("rev-parse", f"{ref}^{{commit}}", cwd=sources.checkout)
    assert any(f"commit {resolved}" in d for d in run.debug), run.debug


@pytest.mark.parametrize("version", ["tag", "commit", "branch"])
def test_git_url_accepts_tag_branch_and_commit(
    tmp_path: Path, sources: Sources, version: str
) -> None:
    ref = {"tag": sources.tag, "commit": sources.commit, "branch": "master"}[version]
    run = preflight(tmp_path, ngas_source=f"file://{sources.checkout}", ngas_version=ref)
    assert run.rc == 0, run.message
    assert run.changed == 0


def test_plain_source_tree_accepted(tmp_path: Path, sources: Sources) -> None:
    run = preflight(tmp_path, ngas_source=str(sources.tree), ngas_version="local-build")
    assert run.rc == 0, run.message
    assert any("plain source tree" in d for d in run.debug), run.debug


def test_online_server_accepted_without_looking_at_the_source(
    tmp_path: Path, servers: Servers
) -> None:
    run = preflight(tmp_path, ngas_url=servers.ngas, ngas_source="/nonexistent/ngas-checkout")
    assert run.rc == 0, run.message
    assert any(f"existing server ngas_url={servers.ngas}" in d for d in run.debug), run.debug


# ---- refused: one failure naming the variables and the fixes ---------------

FIXES = ("NGAS_URL=http://host:7777", "NGAS_SOURCE=/path/to/ngas")


def assert_refused(run: Run, *expected: str) -> None:
    assert run.rc != 0
    assert len(run.failures) == 1, run.failures
    assert run.changed == 0
    for text in ("NGAS is not available, so nothing was changed", *expected, *FIXES):
        assert text in run.message, (text, run.message)


def test_missing_directory_names_both_variables(tmp_path: Path) -> None:
    # the e2e test of `make up` without NGAS checks the first two substrings
    run = preflight(tmp_path, ngas_source="/nonexistent/ngas-checkout")
    assert_refused(
        run,
        "ngas_source=/nonexistent/ngas-checkout",
        "ngas_url is not set",
        "is not a directory on the controller",
    )


@pytest.mark.parametrize("source", ["checkout", "git-url"])
def test_unknown_commit_refused(tmp_path: Path, sources: Sources, source: str) -> None:
    unknown = "0123456789abcdef0123456789abcdef01234567"
    if source == "checkout":
        run = preflight(tmp_path, ngas_source=str(sources.checkout), ngas_version=unknown)
        assert_refused(run, f"ngas_version={unknown}", "no tag, branch or commit")
    else:
        # a server cannot be asked for one commit: a reachable repository is
        # accepted and the host's clone checks the commit out (or fails)
        run = preflight(tmp_path, ngas_source=f"file://{sources.checkout}", ngas_version=unknown)
        assert run.rc == 0, run.message
        assert any(f"commit {unknown} checked out by the host" in d for d in run.debug), run.debug


def test_unknown_tag_refused_in_checkout_and_repository(tmp_path: Path, sources: Sources) -> None:
    run = preflight(tmp_path, ngas_source=str(sources.checkout), ngas_version="v99.0")
    assert_refused(run, "ngas_version=v99.0", "no tag, branch or commit")
    run = preflight(tmp_path, ngas_source=f"file://{sources.checkout}", ngas_version="v99.0")
    assert_refused(run, "ngas_version=v99.0", "has no tag or branch named ngas_version")


def test_unreachable_repository_refused(tmp_path: Path) -> None:
    run = preflight(tmp_path, ngas_source="file:///nonexistent/ngas.git", ngas_version="v12.0")
    assert_refused(
        run, "ngas_source=file:///nonexistent/ngas.git", "cannot be reached with git ls-remote"
    )


def test_directory_that_is_not_ngas_refused(tmp_path: Path, sources: Sources) -> None:
    run = preflight(tmp_path, ngas_source=str(sources.not_ngas), ngas_version="v12.0")
    assert_refused(
        run, f"ngas_source={sources.not_ngas}", "neither a git checkout nor an NGAS source tree"
    )


def test_empty_source_refused(tmp_path: Path) -> None:
    run = preflight(tmp_path, ngas_source="")
    assert_refused(run, "ngas_url is not set", "ngas_source=(empty)")


@pytest.mark.parametrize("server", ["closed", "ngas_503", "not_ngas"])
def test_server_that_is_not_online_refused(tmp_path: Path, servers: Servers, server: str) -> None:
    url = getattr(servers, server)
    run = preflight(tmp_path, ngas_url=url, ngas_source=str(TOP))
    assert_refused(run, f"ngas_url={url}", 'did not answer STATUS with State="ONLINE"')


# ---- the role's preflight runs the same check --------------------------------

ROLE_PREFLIGHT = """\
- name: The ngas role's preflight on this machine
  hosts: localhost
  connection: local
  gather_facts: true
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Run the role's preflight
      ansible.builtin.include_role:
        name: ngas
        tasks_from: preflight.yml
"""


def role_preflight(tmp_path: Path, **extra_vars: str) -> Run:
    playbook = tmp_path / "role-preflight.yml"
    playbook.write_text(ROLE_PREFLIGHT)
    return ansible_playbook(playbook, extra_vars, tmp_path)


def test_role_preflight_gives_the_same_answers(tmp_path: Path, sources: Sources) -> None:
    unknown = "fedcba9876543210fedcba9876543210fedcba98"
    for version in (sources.commit, unknown):
        args = {"ngas_source": str(sources.checkout), "ngas_version": version}
        by_role, by_playbook = role_preflight(tmp_path, **args), preflight(tmp_path, **args)
        assert (by_role.rc == 0) == (by_playbook.rc == 0) == (version == sources.commit)
        assert by_role.failures == by_playbook.failures
        assert by_role.changed == 0


def test_role_preflight_refuses_to_install_where_ngas_url_is_set(
    tmp_path: Path, servers: Servers, sources: Sources
) -> None:
    run = role_preflight(tmp_path, ngas_url=servers.ngas, ngas_source=str(sources.checkout))
    assert run.rc != 0
    assert f"ngas_url={servers.ngas} is set" in run.message
    assert "Unset ngas_url" in run.message
