"""Follow a registered model's alias: poll it, load a new version off the request path,
check it, then swap it in (one reference assignment: a request uses the version it
started with, the next one the new version; none fails during the switch).

Never a broken state: a version that does not download is retried with a doubling
delay (up to ``poll_max``); one that does not load or fails its check is refused
(logged once, reported by ``/version``) and the current one keeps serving. MLflow
failing or unreachable during a poll changes nothing but the delay (fail closed: an
unknown answer never unloads or replaces anything). An alias that is removed keeps
the last version serving, with a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient

from mlpipe.errors import MlpipeError
from mlpipe.serve import versions
from mlpipe.serve.versions import Check, LoadedModel
from mlpipe.tasks import modelref
from mlpipe.tasks.model_cache import ModelCache

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class PollState:
    """What the last polls saw (for ``/version`` and the log)."""

    alias_version: str | None = None  # the version the alias pointed to at the last answer
    polled_at: str | None = None  # the last poll MLflow answered
    poll_error: str | None = None  # the last poll's failure (None once one succeeds)
    failures: int = 0  # polls failed in a row
    retry_in: float = 0.0  # seconds to the next poll after a failure


class AliasFollower:
    """Serves ``models:/<name>@<alias>``; :attr:`current` is the version answering now."""

    def __init__(
        self,
        models: ModelCache,
        name: str,
        alias: str,
        check: Check,
        poll_interval: float,
        poll_max: float,
    ) -> None:
        self.models = models
        self.client: MlflowClient = models.client
        self.name = name
        self.alias = alias
        self.check = check
        self.poll_interval = poll_interval
        self.poll_max = poll_max
        self.current: LoadedModel | None = None
        self.state = PollState()
        self._refused: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one poll at a time (the thread, or poll_once)

    # ------------------------------------------------------------------ start
    def load_initial(self) -> LoadedModel:
        """Resolve the alias and load its version, or raise (nothing to serve).

        The alias is resolved as the read cache's connection mode says (``bad`` or
        ``offline``: as last resolved, with a warning, so a server can start with
        MLflow out of reach when the version is cached).
        :class:`~mlpipe.errors.BadInput` when the model or alias does not exist,
        :class:`~mlpipe.tasks.mlflow_errors.MlflowFailed` when MLflow fails, and
        the errors of :func:`mlpipe.serve.versions.load`.
        """
        ref = self.models.resolve(modelref.ModelRef(self.name, alias=self.alias))
        assert ref.version is not None
        loaded = versions.load(self.models, self.name, ref.version, self.alias, self.check)
        self._swap(loaded)
        self.state.alias_version = ref.version
        self.state.polled_at = _now()
        return loaded

    def start(self) -> None:
        """Poll in a background thread until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mlpipe-serve-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # ------------------------------------------------------------------- poll
    def _run(self) -> None:
        delay = self.poll_interval
        while not self._stop.wait(delay):
            ok = self.poll_once()
            if ok:
                delay = self.poll_interval
            else:
                delay = min(max(delay, self.poll_interval) * 2, self.poll_max)
            self.state.retry_in = 0.0 if ok else delay

    def poll_once(self) -> bool:
        """One look at the alias (and a load when it moved); False when it should be retried."""
        with self._lock:
            try:
                version = modelref.alias_version(
                    self.client, self.name, self.alias, f"serving models:/{self.name}@{self.alias}"
                )
            except MlpipeError as exc:  # MLflow failing, unreachable, the model deleted
                return self._failed(f"{exc}; still serving {self._serving()}")
            self.state.polled_at = _now()
            self.state.alias_version = version
            if version is None:
                return self._failed(
                    f"the alias {self.alias!r} of {self.name!r} is not set any more; "
                    f"still serving {self._serving()}"
                )
            current = self.current
            if current is not None and current.version == version:
                self._recovered()
                return True
            if version in self._refused:
                self._recovered()
                return True  # refused for good; logged when it happened
            return self._switch(version)

    def _switch(self, version: str) -> bool:
        log.info(
            "models:/%s@%s moved to version %s; loading it (serving %s meanwhile)",
            self.name,
            self.alias,
            version,
            self._serving(),
        )
        try:
            loaded = versions.load(self.models, self.name, version, self.alias, self.check)
        except versions.VersionRefused as exc:
            self._refused[version] = str(exc)
            log.error("%s; not switching, still serving %s", exc, self._serving())
            self._recovered()
            return True
        except MlpipeError as exc:  # the download failed: retried with the poll's backoff
            return self._failed(f"{exc}; still serving {self._serving()}")
        old = self._serving()
        self._swap(loaded)
        log.info(
            "now serving %s version %s (run %s; loaded and checked in %.2fs), was %s",
            self.name,
            loaded.version,
            loaded.run_id,
            loaded.load_seconds,
            old,
        )
        self._recovered()
        return True

    def _swap(self, loaded: LoadedModel) -> None:
        self.current = loaded  # one assignment: atomic for the request handlers

    def _serving(self) -> str:
        current = self.current
        return f"version {current.version}" if current is not None else "nothing"

    def _failed(self, message: str) -> bool:
        self.state.failures += 1
        if (
            self.state.poll_error != message
            or self.state.failures in (1, 10)
            or (self.state.failures % 100 == 0)
        ):
            log.warning("poll %d failed: %s", self.state.failures, message)
        self.state.poll_error = message
        return False

    def _recovered(self) -> None:
        if self.state.failures:
            log.info("MLflow answers again after %d failed poll(s)", self.state.failures)
        self.state.failures = 0
        self.state.poll_error = None

    def report(self) -> dict[str, Any]:
        """``/version``: the version answering and what the polls saw."""
        current = self.current
        state = self.state
        return {
            **(current.info() if current is not None else {"name": self.name, "alias": self.alias}),
            "serving": current is not None,
            "alias_version": state.alias_version,
            "polled_at": state.polled_at,
            "poll_interval": self.poll_interval,
            "poll_error": state.poll_error,
            "poll_failures": state.failures,
            "retry_in": state.retry_in,
            "refused": dict(self._refused),
            "checked_with": self.check.source,
            "now": _now(),
            "uptime_seconds": round(time.monotonic() - _STARTED, 1),
        }


_STARTED = time.monotonic()
