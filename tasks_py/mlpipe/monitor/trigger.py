"""The retrain trigger of the erosion monitor: at most one pending retrain per model.

``<state_dir>/<model>.json`` records the pending retrain (when, why, how: the systemd
unit, or the command's process id and start time) and the time of the last trigger;
``<state_dir>/<model>.lock`` serialises the monitors of one model (held by
:class:`TriggerState` for a whole monitor pass).

A retrain is pending while its unit is active, activating, deactivating or reloading
(``systemctl show``) or while its command's process is alive (the same process id with
the same start time, not a zombie). :meth:`TriggerState.request` then starts nothing
and says so, as it does within ``min_interval`` seconds of the last trigger. Otherwise
it starts ``systemctl start --no-block <retrain_unit>`` or ``retrain_command`` (in its
own session, stdin from /dev/null, output appended to ``<model>-retrain.log``, with
``MLPIPE_RETRAIN_MODEL``, ``MLPIPE_RETRAIN_VERSION`` and ``MLPIPE_RETRAIN_REASON``
in its environment) and records it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from filelock import FileLock, Timeout

from mlpipe.config import MonitorConfig
from mlpipe.errors import BadInput, MlpipeError

log = logging.getLogger(__name__)

Outcome = Literal["triggered", "pending", "too soon", "not configured"]
RUNNING_STATES = ("active", "activating", "deactivating", "reloading", "refreshing")
SYSTEMCTL_TIMEOUT = 60.0
# the commands this process started (kept referenced: a long-lived monitor reaps them
# when it sees them ended, rather than the garbage collector warning about them)
_STARTED: list[subprocess.Popen[bytes]] = []


class MonitorBusy(MlpipeError):
    """Another monitor of the same model holds the lock."""


class TriggerFailed(MlpipeError):
    """The retrain could not be started (systemctl or the command failed)."""


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    message: str


def state_name(model: str) -> str:
    """A registered model name as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model) or "_"


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _process_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of a live, non-zombie process ``pid``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        if fields and fields[0] == "Z":
            with contextlib.suppress(ChildProcessError):  # our own child: reap it
                os.waitpid(pid, os.WNOHANG)
        return None
    return fields[19]  # field 22 of stat: starttime


class TriggerState:
    """The trigger state of one model, locked while in the ``with`` block."""

    def __init__(self, cfg: MonitorConfig, model: str) -> None:
        self.cfg = cfg
        self.model = model
        name = state_name(model)
        self.path = cfg.state_dir / f"{name}.json"
        self.log_path = cfg.state_dir / f"{name}-retrain.log"
        self._lock = FileLock(str(cfg.state_dir / f"{name}.lock"))

    def __enter__(self) -> TriggerState:
        try:
            self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(
                f"[monitor] state_dir {self.cfg.state_dir}: cannot create it ({exc}); create it "
                "writable by this user or set MLPIPE_MONITOR_STATE_DIR"
            ) from None
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise MonitorBusy(
                f"monitor of {self.model}: another monitor holds {self._lock.lock_file}; "
                "nothing done (it runs again next time)"
            ) from None
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()

    # ------------------------------------------------------------- the file
    def read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"model": self.model, "pending": None, "last_trigger": None}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BadInput(
                f"{self.path}: unreadable monitor state ({exc}); remove it if no retrain it "
                "started is still running"
            ) from None
        if not isinstance(data, dict):
            raise BadInput(f"{self.path}: not a monitor state (a JSON object); remove it")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    # ---------------------------------------------------------- is it running
    def running(self, pending: dict[str, Any]) -> bool:
        """Whether the recorded retrain is still running."""
        if pending.get("unit"):
            return self._unit_state(str(pending["unit"])) in RUNNING_STATES
        pid, started = pending.get("pid"), pending.get("pid_start")
        if isinstance(pid, int) and pid > 0 and started:
            return bool(_process_start(pid) == started)
        return False

    def _systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        exe = shutil.which("systemctl")
        if exe is None:
            raise TriggerFailed(
                f"[monitor] retrain_unit {self.cfg.retrain_unit!r}: systemctl is not on PATH "
                "here; set retrain_command instead, or run the monitor on a systemd host"
            )
        try:
            return subprocess.run(
                [exe, *args],
                capture_output=True,
                text=True,
                check=False,
                timeout=SYSTEMCTL_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise TriggerFailed(
                f"systemctl {' '.join(args)}: no answer in {SYSTEMCTL_TIMEOUT:g}s"
            ) from None

    def _unit_state(self, unit: str) -> str:
        done = self._systemctl("show", "--property=ActiveState", "--value", unit)
        if done.returncode != 0:
            raise TriggerFailed(
                f"systemctl show {unit}: exit {done.returncode}: {done.stderr.strip()[:400]}; "
                "the pending retrain's state is unknown, nothing is started"
            )
        return done.stdout.strip()

    def status(self) -> tuple[dict[str, Any], bool]:
        """The state and whether its pending retrain still runs (an ended one is cleared)."""
        data = self.read()
        pending = data.get("pending")
        if isinstance(pending, dict):
            if self.running(pending):
                return data, True
            data["pending"] = None
            data["last_ended_seen"] = time.time()
            data["last_pending"] = pending
            self._write(data)
            log.info("retrain of %s started %s has ended", self.model, pending.get("since"))
        return data, False

    # -------------------------------------------------------------- trigger
    def request(self, reason: str, version: str) -> Decision:
        """Start a retrain for ``reason`` unless one is pending or the last was too recent."""
        cfg = self.cfg
        if not cfg.retrain_unit and not cfg.retrain_command:
            return Decision(
                "not configured",
                "no retrain started: neither [monitor] retrain_unit nor retrain_command is set",
            )
        data, busy = self.status()
        if busy:
            pending = data["pending"]
            return Decision(
                "pending",
                f"not triggered: the retrain started {pending.get('since')} "
                f"({pending.get('how')}) is still pending",
            )
        now = time.time()
        last = data.get("last_trigger")
        if isinstance(last, int | float) and now - last < cfg.min_interval:
            return Decision(
                "too soon",
                f"not triggered: the last retrain was triggered {when(last)}, less than "
                f"[monitor] min_interval {cfg.min_interval:g}s ago "
                f"(next from {when(last + cfg.min_interval)})",
            )
        pending = self._start(reason, version)
        pending.update({"since": when(now), "reason": reason, "version": version})
        data.update({"model": self.model, "pending": pending, "last_trigger": now})
        data["last_reason"] = reason
        self._write(data)
        return Decision("triggered", f"retrain triggered ({pending['how']}): {reason}")

    def _start(self, reason: str, version: str) -> dict[str, Any]:
        cfg = self.cfg
        if cfg.retrain_unit:
            done = self._systemctl("start", "--no-block", cfg.retrain_unit)
            if done.returncode != 0:
                raise TriggerFailed(
                    f"systemctl start --no-block {cfg.retrain_unit}: exit {done.returncode}: "
                    f"{done.stderr.strip()[:400]}; check [monitor] retrain_unit and that this "
                    "user may start it"
                )
            return {"unit": cfg.retrain_unit, "how": f"systemctl start {cfg.retrain_unit}"}
        words = shlex.split(cfg.retrain_command)
        env = {
            **os.environ,
            "MLPIPE_RETRAIN_MODEL": self.model,
            "MLPIPE_RETRAIN_VERSION": version,
            "MLPIPE_RETRAIN_REASON": reason,
        }
        _STARTED[:] = [p for p in _STARTED if p.poll() is None]
        try:
            with self.log_path.open("ab") as out:
                proc = subprocess.Popen(
                    words,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
        except OSError as exc:
            raise TriggerFailed(
                f"[monitor] retrain_command {cfg.retrain_command!r}: cannot start it ({exc})"
            ) from None
        _STARTED.append(proc)
        return {
            "pid": proc.pid,
            "pid_start": _process_start(proc.pid),
            "command": cfg.retrain_command,
            "how": f"command {words[0]} (process {proc.pid}, output {self.log_path})",
        }
