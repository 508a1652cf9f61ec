"""Real DALiuGE managers on loopback for the executor tests: node managers and an island.

The managers run from their own venv (``.venv-dlg``, made by ``make dlg-venv``
from ``tests/dlg/requirements.txt``; ``MLPIPE_TEST_DLG_VENV`` names another),
each with its own ``DLG_ROOT`` and free ports; ready when ``GET /api`` answers
(the island: once it lists every node manager).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from procs import free_port, stop_process, wait_until

TOP = Path(__file__).resolve().parents[2]
DLG_VENV = Path(os.environ.get("MLPIPE_TEST_DLG_VENV") or TOP / ".venv-dlg")


def dlg_bin() -> Path:
    """The ``dlg`` CLI of the test venv; fails (never skips) naming the fix when missing."""
    exe = DLG_VENV / "bin" / "dlg"
    if not exe.is_file():
        pytest.fail(
            f"{exe} not found: the DALiuGE managers for the executor tests live in their own "
            "venv; run `make dlg-venv` (make test-unit does it) or set MLPIPE_TEST_DLG_VENV"
        )
    return exe


@dataclass
class Manager:
    """One running ``dlg nm`` or ``dlg dim``."""

    kind: str  # "nm" | "dim"
    port: int
    root: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    events_port: int = 0
    rpc_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def node(self) -> str:
        """The node manager as the island lists it: host:port:events:rpc."""
        return f"127.0.0.1:{self.port}:{self.events_port}:{self.rpc_port}"

    def stop(self) -> None:
        stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL: the manager vanishes mid-run (no cleanup, no answer)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _start(kind: str, args: list[str], root: Path, port: int, env: dict[str, str]) -> Manager:
    root.mkdir(parents=True, exist_ok=True)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    log = root / f"{kind}.out"
    # like the units on the workers: no mlpipe settings in the managers' environment
    # (steps get theirs from [daliuge] config_file / env_file)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLPIPE_")}
    full_env.update({**env, "DLG_ROOT": str(root)})
    proc = subprocess.Popen(
        [str(dlg_bin()), kind, "-H", "127.0.0.1", "-P", str(port), "-l", str(logs), *args],
        cwd=root,
        env=full_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Manager(kind=kind, port=port, root=root, log=log, process=proc)


def start_node_manager(root: Path, env: dict[str, str] | None = None) -> Manager:
    port, events, rpc = free_port(), free_port(), free_port()
    args = ["--event_port", str(events), "--rpc_port", str(rpc), "--max-threads", "4"]
    nm = _start("nm", args, root, port, env or {})
    nm.events_port, nm.rpc_port = events, rpc
    wait_until(
        lambda: requests.get(f"{nm.url}/api", timeout=5).status_code == 200,
        f"DALiuGE node manager on {nm.url}",
        nm.process,
        log=nm.log,
    )
    return nm


def start_island(root: Path, nodes: list[Manager]) -> Manager:
    port = free_port()
    dim = _start("dim", ["-N", ",".join(n.node for n in nodes)], root, port, {})
    expected = {n.node for n in nodes}

    def ready() -> bool:
        r = requests.get(f"{dim.url}/api/nodes", timeout=5)
        return r.status_code == 200 and expected <= set(map(str, r.json()))

    wait_until(ready, f"DALiuGE island manager on {dim.url}", dim.process, log=dim.log)
    return dim
