"""``--executor daliuge``: the plan as one DALiuGE physical graph, run by the island's nodes.

On the controller (where ``mlpipe pipeline run`` runs):

1. steps whose producers are all known and that are unchanged since their last
   success (``steps.unchanged``) are skipped and not submitted;
2. the others become a physical graph (:func:`physical_graph`, pure): per step
   a ``BashShellApp`` running :mod:`mlpipe.pipeline.executors.daliuge_node`
   (which runs ``python -m mlpipe.pipeline.step``) with the job, and two file
   drops on the same node: the step's outcome (``out_<step>``, the input of
   its consumers' apps) and its stderr (``err_<step>``). Steps are placed
   round-robin over the island's node managers in dependency order;
3. the graph is submitted to the Data Island Manager's REST API
   (``[daliuge] url``), and session and per-drop status are polled with
   backoff, a progress line printed on stderr at each change;
4. each step's outcome is read from its outcome drop through its node
   manager's REST API; a step that wrote none is failed with its stderr tail,
   a step not run because a producer failed is ``blocked``.

Every MLflow run of a step carries ``mlpipe.executor=daliuge`` and
``mlpipe.daliuge.session=<session id>``. An island or node manager that does
not answer for ``[daliuge] timeout`` seconds fails the run (its steps failed,
the session cancelled); Ctrl-C cancels the session.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from mlpipe.config import DaliugeConfig
from mlpipe.errors import BadInput, MlpipeError
from mlpipe.pipeline.executors.base import StepRunner
from mlpipe.pipeline.executors.daliuge_node import MODULE as NODE_MODULE
from mlpipe.pipeline.executors.daliuge_node import TAG_EXECUTOR, TAG_SESSION, encode
from mlpipe.pipeline.plan import Plan
from mlpipe.pipeline.step import OK_STATUSES, StepJob, StepOutcome

APP_CLASS = "dlg.apps.bash_shell_app.BashShellApp"
FILE_CLASS = "dlg.data.drops.file.FileDROP"

# DALiuGE 6.x states (dlg.ddap_protocol)
SESSION_FINISHED, SESSION_CANCELLED, SESSION_FAILED = 4, 5, 6
SESSION_DONE = (SESSION_FINISHED, SESSION_CANCELLED, SESSION_FAILED)
EXEC_NOT_RUN, EXEC_RUNNING, EXEC_FINISHED, EXEC_ERROR, EXEC_CANCELLED = 0, 1, 2, 3, 4
STDERR_TAIL = 3000  # bytes of a step's stderr kept in the NM log and in a failure summary


def settings_args(settings: DaliugeConfig) -> list[str]:
    """The node helper's options for the worker-side files of ``[daliuge]`` that are set."""
    args: list[str] = []
    for flag, value in (
        ("--config", settings.config_file),
        ("--env-file", settings.env_file),
        ("--work-dir", settings.work_dir),
    ):
        if value:
            args += [flag, shlex.quote(value)]
    return args


def with_stderr_tail(args: list[str], err: str) -> str:
    """The bash command running ``args`` with stderr into ``err``, its tail echoed on exit."""
    return f"{' '.join(args)} 2> {err}; rc=$?; tail -c {STDERR_TAIL} {err} >&2; exit $rc"


def app_oid(step: str) -> str:
    return f"app_{step}"


def outcome_oid(step: str) -> str:
    return f"out_{step}"


def stderr_oid(step: str) -> str:
    return f"err_{step}"


def node_url(node: str) -> str:
    """``host:port[:events:rpc]`` (as the island lists it) -> the node manager's REST URL."""
    host, _, rest = node.partition(":")
    return f"http://{host}:{rest.split(':', 1)[0] or 8000}"


@dataclass(frozen=True)
class Graph:
    """A physical graph and what the executor needs to follow it."""

    drops: list[dict[str, Any]]
    placement: dict[str, str]  # step -> node it runs on
    roots: list[str]  # app oids with no input in the graph (deployed as completed)


def place(steps: Sequence[str], nodes: Sequence[str]) -> dict[str, str]:
    """Round-robin over ``nodes`` in the order given (dependency order)."""
    if not nodes:
        raise MlpipeError("the DALiuGE island lists no node managers; nothing can run")
    return {step: nodes[i % len(nodes)] for i, step in enumerate(steps)}


def physical_graph(
    plan: Plan,
    jobs: Mapping[str, StepJob],
    known: Mapping[str, StepOutcome],
    placement: Mapping[str, str],
    island: str,
    session: str,
    settings: DaliugeConfig,
) -> Graph:
    """The physical graph running ``jobs`` (template jobs, in dependency order).

    ``known`` holds the outcomes of producers not in the graph (skipped as
    unchanged on the controller); they are passed to their consumers inline.
    """
    consumers: dict[str, list[str]] = {s: [] for s in jobs}
    for step in jobs:
        for dep in sorted(plan.deps[step]):
            if dep in jobs:
                consumers[dep].append(step)
    drops: list[dict[str, Any]] = []
    roots: list[str] = []
    for step, job in jobs.items():
        node = placement[step]
        args = [shlex.quote(settings.python), "-m", NODE_MODULE, encode(job.to_json())]
        args.append("{" + outcome_oid(step) + "}")
        inputs: list[str] = []
        for dep in sorted(plan.deps[step]):
            if dep in jobs:
                inputs.append(outcome_oid(dep))
                if placement[dep] == node:
                    args += ["--upstream", "{" + outcome_oid(dep) + "}"]
                else:  # a file drop on another node is not readable here: its NM serves it
                    url = f"{node_url(placement[dep])}/sessions/{session}/graph/drop/data/"
                    args += ["--fetch", shlex.quote(url + outcome_oid(dep))]
            elif dep in known:
                args += ["--known", encode(known[dep].to_json())]
            else:
                raise BadInput(f"step {step}: producer {dep} is neither submitted nor known")
        args += settings_args(settings)
        args += ["--timeout", str(settings.request_timeout)]
        command = with_stderr_tail(args, "{" + stderr_oid(step) + "}")
        common = {"node": node, "island": island}
        app: dict[str, Any] = {
            "oid": app_oid(step),
            "categoryType": "Application",
            "dropclass": APP_CLASS,
            "name": f"mlpipe step {step} ({job.task})",
            "command": command,
            "outputs": [outcome_oid(step), stderr_oid(step)],
            **common,
        }
        if inputs:
            app["inputs"] = inputs
        else:
            roots.append(app_oid(step))
        drops.append(app)
        out: dict[str, Any] = {
            "oid": outcome_oid(step),
            "categoryType": "Data",
            "dropclass": FILE_CLASS,
            "name": f"outcome of {step}",
            "producers": [app_oid(step)],
            **common,
        }
        if consumers[step]:
            out["consumers"] = [app_oid(c) for c in consumers[step]]
        drops.append(out)
        drops.append(
            {
                "oid": stderr_oid(step),
                "categoryType": "Data",
                "dropclass": FILE_CLASS,
                "name": f"stderr of {step}",
                "producers": [app_oid(step)],
                **common,
            }
        )
    return Graph(drops, dict(placement), roots)


class Unreachable(MlpipeError):
    """The island or a node manager did not answer (connection error, timeout, 5xx)."""


@dataclass
class Island:
    """The few DIM / NM REST calls the executor makes; service errors are never "not found"."""

    url: str
    timeout: float
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def call(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise Unreachable(f"{what}: {url} did not answer ({exc.__class__.__name__})") from None
        if response.status_code >= 500:
            raise Unreachable(f"{what}: {url} answered {response.status_code}: {_body(response)}")
        if response.status_code >= 400:
            raise MlpipeError(f"{what}: {url} refused ({response.status_code}): {_body(response)}")
        return response

    def api(self, path: str) -> str:
        return f"{self.url.rstrip('/')}/api{path}"

    def nodes(self) -> list[str]:
        what = "listing the island's node managers"
        found = _json(self.call("GET", self.api("/nodes"), what), what, list)
        return [str(n) for n in found]

    def sessions(self) -> list[str]:
        what = "listing the island's sessions"
        found = _json(self.call("GET", self.api("/sessions"), what), what, list)
        return [str(s.get("sessionId")) for s in found if isinstance(s, dict)]

    def submit(self, session: str, graph: Graph) -> None:
        what = f"submitting DALiuGE session {session}"
        self.call("POST", self.api("/sessions"), what, json={"sessionId": session})
        self.call("POST", self.api(f"/sessions/{session}/graph/append"), what, json=graph.drops)
        self.call(
            "POST",
            self.api(f"/sessions/{session}/deploy"),
            what,
            data={"completed": ",".join(graph.roots)},
        )

    def status(self, session: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        what = f"polling DALiuGE session {session}"
        nodes = _json(self.call("GET", self.api(f"/sessions/{session}/status"), what), what, dict)
        drops = _json(
            self.call("GET", self.api(f"/sessions/{session}/graph/status"), what), what, dict
        )
        try:
            states = {str(k): int(v) for k, v in nodes.items()}
            execs = {
                str(oid): {str(k): int(v) for k, v in state.items()} for oid, state in drops.items()
            }
        except (AttributeError, TypeError, ValueError):
            raise MlpipeError(
                f"{what}: the island's answer is not DALiuGE's session status: "
                f"{str(nodes)[:200]} / {str(drops)[:200]}"
            ) from None
        return states, execs

    def cancel(self, session: str) -> None:
        self.call("POST", self.api(f"/sessions/{session}/cancel"), f"cancelling {session}")

    def alive(self, node: str) -> str | None:
        """None if the node manager answers ``GET /api``, else why not."""
        try:
            self.call("GET", f"{node_url(node)}/api", f"node manager {node}")
        except MlpipeError as exc:
            return str(exc)
        return None

    def drop_data(self, node: str, session: str, oid: str) -> str | None:
        """The content of file drop ``oid`` on ``node``; None if it has no file."""
        url = f"{node_url(node)}/sessions/{session}/graph/drop/data/{oid}"
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unreachable(f"reading {oid}: {url} did not answer ({exc})") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise Unreachable(f"reading {oid}: {url} answered {response.status_code}")
        return response.text


def _json(response: requests.Response, what: str, kind: type) -> Any:
    """The JSON body, of type ``kind``; MlpipeError naming the URL otherwise."""
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if not isinstance(doc, kind):
        raise MlpipeError(
            f"{what}: {response.url} answered {_body(response)!r}, expected a JSON "
            f"{kind.__name__}; is [daliuge] url a DALiuGE island manager?"
        )
    return doc


def _body(response: requests.Response) -> str:
    return response.text[:300].strip()


def _tail(text: str | None, lines: int = 15) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


Progress = Callable[[str], None]


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class DaliugeExecutor:
    name = "daliuge"

    def __init__(self, settings: DaliugeConfig, progress: Progress = _print_progress) -> None:
        self.settings = settings
        self.progress = progress

    # ------------------------------------------------------------------ run
    def run(self, plan: Plan, steps: StepRunner) -> dict[str, StepOutcome]:
        outcomes, submit = self._decide(plan, steps)
        if not submit:
            return outcomes
        island = Island(self.settings.url, self.settings.request_timeout)
        session = f"mlpipe-{plan.pipeline.name}-{plan.pipeline_run}"
        tags = {TAG_EXECUTOR: self.name, TAG_SESSION: session}
        jobs = {
            s: replace(plan.template(s), tags={**plan.template(s).tags, **tags}) for s in submit
        }
        try:
            nodes = island.nodes()
        except MlpipeError as exc:
            raise MlpipeError(f"[daliuge] url {self.settings.url}: {exc}") from None
        placement = place(submit, nodes)
        host = self.settings.url.split("://", 1)[1].split(":", 1)[0].split("/", 1)[0]
        graph = physical_graph(plan, jobs, outcomes, placement, host, session, self.settings)
        island.submit(session, graph)
        self.progress(
            f"daliuge session {session}: {len(submit)} step(s) on "
            + ", ".join(sorted(set(placement.values())))
        )
        try:
            lost, reason = self._wait(island, session, graph)
        except KeyboardInterrupt:
            self.progress(f"daliuge session {session}: interrupted, cancelling it")
            try:
                island.cancel(session)
            except MlpipeError as exc:
                self.progress(f"daliuge session {session}: cancel failed: {exc}")
            raise
        outcomes.update(self._collect(plan, island, session, graph, lost, reason))
        return outcomes

    def _decide(self, plan: Plan, steps: StepRunner) -> tuple[dict[str, StepOutcome], list[str]]:
        """Outcomes known on the controller (skipped, bad input, blocked) and steps to submit."""
        outcomes: dict[str, StepOutcome] = {}
        submit: list[str] = []
        for name in plan.order:
            deps = plan.deps[name]
            if any(d in outcomes and outcomes[d].status not in OK_STATUSES for d in deps):
                outcomes[name] = StepOutcome(name, "blocked", summary="a dependency failed")
                continue
            if any(d in submit for d in deps):
                submit.append(name)
                continue
            try:
                skipped = steps.unchanged(plan.job(name, outcomes))
            except BadInput as exc:
                outcomes[name] = StepOutcome(name, "failed", summary=str(exc), bad_input=True)
                continue
            except MlpipeError as exc:
                outcomes[name] = StepOutcome(name, "failed", summary=str(exc))
                continue
            if skipped is not None:
                outcomes[name] = skipped
            else:
                submit.append(name)
        return outcomes, submit

    def _wait(self, island: Island, session: str, graph: Graph) -> tuple[dict[str, str], str]:
        """Poll until the session ends.

        Returns node -> why for the nodes that stopped answering, and why the
        session was given up ("" when it ended by itself).
        """
        settings = self.settings
        delay = settings.poll_interval
        silent_since: dict[str, float] = {}  # node or "island" -> first failed poll
        last_line = ""
        apps = {app_oid(s): s for s in graph.placement}
        while True:
            problems: dict[str, str] = {}
            try:
                nodes, drops = island.status(session)
            except Unreachable as exc:
                problems["island"] = str(exc)
                nodes, drops = {}, {}
            for node in sorted(set(graph.placement.values())):
                why = island.alive(node)
                if why:
                    problems[node] = why
            now = time.monotonic()
            for key in list(silent_since):
                if key not in problems:
                    del silent_since[key]
            for key, why in problems.items():
                since = silent_since.setdefault(key, now)
                if now - since >= settings.timeout:
                    self.progress(f"daliuge session {session}: giving up: {why}")
                    self._cancel_quietly(island, session, sorted(set(graph.placement.values())))
                    lost = {k: v for k, v in problems.items() if k != "island"}
                    reason = (
                        f"{'node manager ' + key if key != 'island' else 'the DALiuGE island'} "
                        f"did not answer for {settings.timeout:g} s ([daliuge] timeout), so "
                        f"session {session} was cancelled: {why}"
                    )
                    return lost, reason
            if nodes and all(v in SESSION_DONE for v in nodes.values()):
                return {}, ""
            if drops:
                states = [int(drops.get(oid, {}).get("execStatus", 0)) for oid in apps]
                line = (
                    f"daliuge session {session}: {states.count(EXEC_FINISHED)}/{len(apps)} "
                    f"step(s) done, {states.count(EXEC_RUNNING)} running, "
                    f"{states.count(EXEC_ERROR)} failed"
                )
                if line != last_line:
                    self.progress(line)
                    last_line = line
                    delay = settings.poll_interval
            time.sleep(delay)  # the poll interval, doubled while nothing changes
            delay = min(delay * 2, settings.poll_max)

    def _cancel_quietly(self, island: Island, session: str, nodes: Sequence[str]) -> None:
        """Cancel on the island, else on each node manager that still answers."""
        try:
            island.cancel(session)
            return
        except MlpipeError as exc:
            self.progress(f"daliuge session {session}: cancel failed: {exc}")
        for node in nodes:
            url = f"{node_url(node)}/api/sessions/{session}/cancel"
            try:
                island.call("POST", url, f"cancelling {session} on {node}")
            except MlpipeError as exc:
                self.progress(f"daliuge session {session}: cancel failed: {exc}")

    def _collect(
        self,
        plan: Plan,
        island: Island,
        session: str,
        graph: Graph,
        lost: Mapping[str, str],
        reason: str,
    ) -> dict[str, StepOutcome]:
        """Each submitted step's outcome, in dependency order."""
        try:
            _, drops = island.status(session)
        except MlpipeError:
            drops = {}
        outcomes: dict[str, StepOutcome] = {}
        for step in graph.placement:
            node = graph.placement[step]
            deps = plan.deps[step]
            if node in lost:  # whether it ran or not, its result is on that node
                outcomes[step] = StepOutcome(
                    step,
                    "failed",
                    summary=(
                        f"node manager {node} stopped answering for {self.settings.timeout:g} s "
                        f"([daliuge] timeout), the step's result is lost: {lost[node]}; check "
                        "`journalctl -u daliuge-node` there and run again"
                    ),
                )
                continue
            if any(d in outcomes and outcomes[d].status not in OK_STATUSES for d in deps):
                outcomes[step] = StepOutcome(step, "blocked", summary="a dependency failed")
                continue
            outcomes[step] = self._outcome(island, session, step, node, drops, reason)
        return outcomes

    def _outcome(
        self,
        island: Island,
        session: str,
        step: str,
        node: str,
        drops: Mapping[str, Mapping[str, int]],
        aborted: str,
    ) -> StepOutcome:
        state = int(drops.get(app_oid(step), {}).get("execStatus", EXEC_NOT_RUN))
        where = f"outcome of step {step} on {node}"
        try:
            text = island.drop_data(node, session, outcome_oid(step))
            stderr = island.drop_data(node, session, stderr_oid(step))
        except MlpipeError as exc:
            return StepOutcome(step, "failed", summary=f"{where}: {exc}")
        if text and text.strip():
            try:
                outcome = StepOutcome.from_json(text, where)
            except BadInput as exc:
                outcome = StepOutcome(step, "failed", summary=str(exc))
            if outcome.status == "failed" and _tail(stderr):
                self.progress(f"{step}: failed on {node}; stderr (tail):\n{_tail(stderr)}")
            return replace(outcome, step=step)
        if aborted:
            return StepOutcome(step, "failed", summary=f"step {step} did not finish: {aborted}")
        if state == EXEC_NOT_RUN:
            return StepOutcome(
                step, "failed", summary=f"step {step} did not run: session {session} ended first"
            )
        tail = _tail(stderr)
        self.progress(f"{step}: failed on {node} without an outcome; stderr (tail):\n{tail}")
        return StepOutcome(
            step,
            "failed",
            summary=f"step {step} wrote no outcome on {node}; its stderr ends with:\n{tail}",
        )
