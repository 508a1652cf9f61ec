"""MLflow failures as mlpipe errors: only "does not exist" means absent (fail closed).

The MLflow client raises :class:`~mlflow.exceptions.MlflowException` for
everything: a missing model (``RESOURCE_DOES_NOT_EXIST``), a refused login
(401), a server error (5xx), a server that cannot be reached. Callers look for
absence with :func:`is_not_found` only; anything else goes through
:func:`translate` and becomes an error saying what failed, so nothing acts on
an unknown answer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import requests
from mlflow import get_tracking_uri
from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS, MlflowException

from mlpipe.errors import MlpipeError

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
ENV_USER = "MLFLOW_TRACKING_USERNAME"
ENV_PASSWORD = "MLFLOW_TRACKING_PASSWORD"

T = TypeVar("T")


class MlflowFailed(MlpipeError):
    """MLflow answered with an error (other than "does not exist")."""


class MlflowUnreachable(MlflowFailed):
    """The tracking server could not be reached (connection refused, timeout)."""


class MlflowAuthRefused(MlflowFailed):
    """The tracking server refused the credentials (401) or the permission (403)."""


def is_not_found(exc: BaseException) -> bool:
    """True only for MLflow's own "this model/version/run does not exist"."""
    return isinstance(exc, MlflowException) and exc.error_code == NOT_FOUND


def _network_cause(exc: BaseException) -> BaseException | None:
    """The connection error or timeout behind ``exc``, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.ConnectionError | requests.Timeout):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def translate(exc: MlflowException | requests.RequestException, what: str) -> MlflowFailed:
    """``exc`` (raised while doing ``what``) as an error naming the server and the fix."""
    url = get_tracking_uri()
    if _network_cause(exc) is not None:
        return MlflowUnreachable(
            f"{what}: the MLflow tracking server at {url} is unreachable "
            f"({exc.__class__.__name__}: {_first_line(exc)}); start it or fix [mlflow] "
            "tracking_uri (MLPIPE_MLFLOW_TRACKING_URI)"
        )
    code = exc.error_code if isinstance(exc, MlflowException) else "request failed"
    status = ERROR_CODE_TO_HTTP_STATUS.get(code)
    if code == NOT_FOUND:
        return MlflowFailed(f"{what}: {_first_line(exc)} (MLflow at {url})")
    user = os.environ.get(ENV_USER)
    who = f"user {user!r}" if user else f"no user ({ENV_USER} is not set)"
    if status == 401:
        return MlflowAuthRefused(
            f"{what}: the MLflow server at {url} refused the login of {who} (HTTP 401); "
            f"check {ENV_USER} and {ENV_PASSWORD} (or [mlflow] tracking_token)"
        )
    if status == 403:
        return MlflowAuthRefused(
            f"{what}: the MLflow server at {url} denied {who} permission (HTTP 403); "
            "ask an MLflow admin for the permission or use another account"
        )
    return MlflowFailed(
        f"{what}: the MLflow server at {url} failed ({code}, HTTP {status}): "
        f"{_first_line(exc)}; retry later or check the server's log"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__


@contextlib.contextmanager
def failing_closed(what: str) -> Iterator[None]:
    """Re-raise MLflow failures as :class:`MlflowFailed`; "does not exist" passes unchanged."""
    try:
        yield
    except MlflowException as exc:
        if is_not_found(exc):
            raise
        raise translate(exc, what) from exc
    except requests.RequestException as exc:
        raise translate(exc, what) from exc


def unless_absent(what: str, call: Callable[[], T]) -> T | None:
    """``call()``, or None if MLflow says it does not exist; any other failure raises."""
    try:
        with failing_closed(what):
            return call()
    except MlflowException as exc:
        if is_not_found(exc):  # the only MlflowException failing_closed lets through
            return None
        raise


@contextlib.contextmanager
def as_mlpipe_errors(what: str) -> Iterator[None]:
    """Every MLflow failure (even "does not exist") as :class:`MlflowFailed` (exit code 1).

    Artifact downloads and listings raise ``requests`` errors of their own (a 5xx as
    ``HTTPError``): those too.
    """
    try:
        yield
    except (MlflowException, requests.RequestException) as exc:
        raise translate(exc, what) from exc
