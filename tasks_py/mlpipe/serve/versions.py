"""One registered model version, downloaded, loaded and checked before it may serve.

The version's files are read through the read cache (:mod:`mlpipe.tasks.model_cache`):
downloaded once, then loaded from the cache with no request. Loading is MLflow pyfunc:
what ``mlflow models serve`` runs, so the model's signature casts and checks every
request the same way. The check predicts a scoring request: ``[serve] check_input`` when
a site names one (the shape of the requests its clients send), else the version's own
serving input example. It fails when the model raises, answers no or fewer predictions
than rows, or answers NaN or infinity.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from mlpipe.errors import BadInput, MlpipeError
from mlpipe.serve import scoring
from mlpipe.tasks.model_cache import ModelCache

log = logging.getLogger(__name__)


class DownloadFailed(MlpipeError):
    """MLflow or the artifact store did not deliver the version (retried later)."""


class VersionRefused(MlpipeError):
    """The version was delivered but does not load or does not answer its check (final)."""


@dataclass(frozen=True)
class Check:
    """The request a new version must answer: a decoded scoring JSON document."""

    document: dict[str, Any] | None  # None: the version's own input example
    source: str

    @classmethod
    def from_file(cls, path: str) -> Check:
        if not path:
            return cls(None, "its input example")
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadInput(
                f"[serve] check_input {path}: cannot read a scoring JSON document ({exc}); "
                f"write {scoring.ACCEPTED}"
            ) from None
        try:
            scoring.parse_json(document, None)  # its shape; the columns are the model's to check
        except scoring.BadRequest as exc:
            raise BadInput(f"[serve] check_input {path}: {exc}") from None
        assert isinstance(document, dict)
        return cls(document, path)


@dataclass
class LoadedModel:
    """A version ready to answer: what ``/version`` reports and the pyfunc model."""

    name: str
    version: str
    run_id: str
    alias: str
    model: Any = field(repr=False)
    load_seconds: float = 0.0
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    from_cache: bool = False  # its files came from the read cache without a request

    @property
    def schema(self) -> Any:
        return self.model.metadata.get_input_schema()

    def predict(self, data: Any, params: dict[str, Any]) -> Any:
        """Raw predictions; :class:`~mlpipe.serve.scoring.BadRequest` when the input does not
        fit the model (its signature, or the model itself refusing the rows)."""
        try:
            if params:
                return self.model.predict(data, params=params)
            return self.model.predict(data)
        except MlflowException as exc:
            raise scoring.BadRequest(
                f"the input does not fit {self.name} version {self.version}: "
                f"{scoring.mlflow_message(exc)}"
            ) from None
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise scoring.BadRequest(
                f"{self.name} version {self.version} cannot predict these rows "
                f"({exc.__class__.__name__}: {str(exc)[: scoring.MAX_MESSAGE]})"
            ) from None

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "alias": self.alias,
            "model_uri": f"models:/{self.name}/{self.version}",
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.load_seconds, 3),
            "from_cache": self.from_cache,
        }


def load(models: ModelCache, name: str, version: str, alias: str, check: Check) -> LoadedModel:
    """Fetch (through the read cache), load and check ``name`` version ``version``.

    Raises :class:`DownloadFailed` when MLflow or the artifact store fail, or the
    version does not exist (worth retrying), :class:`VersionRefused` when the
    version does not load or answer.
    """
    import mlflow.pyfunc

    started = time.monotonic()
    what = f"model {name} version {version}"
    try:
        cached = models.version(name, version)
    except (MlpipeError, OSError) as exc:  # BadInput: no such version; else MLflow failing
        raise DownloadFailed(f"{what}: {exc}") from None
    local = str(cached.path)
    try:
        model = mlflow.pyfunc.load_model(local)
    except Exception as exc:  # a model that does not load is a refused version, whatever it raises
        raise VersionRefused(
            f"{what} does not load as an MLflow pyfunc model "
            f"({exc.__class__.__name__}: {str(exc)[:300]})"
        ) from None
    loaded = LoadedModel(
        name, version, cached.run_id, alias, model, from_cache=not cached.downloaded
    )
    run_check(loaded, check, local)
    loaded.load_seconds = time.monotonic() - started
    return loaded


def run_check(loaded: LoadedModel, check: Check, local: str) -> None:
    """Predict the check request with ``loaded``; :class:`VersionRefused` when it fails."""
    what = f"model {loaded.name} version {loaded.version}"
    document = check.document
    if document is None:
        document = _example_request(loaded, local)
        if document is None:
            raise VersionRefused(
                f"{what} has no input example to check it with; log it with one or name a "
                "request in [serve] check_input"
            )
    try:
        data, params = scoring.parse_json(document, loaded.schema)
        answer = scoring.jsonable(loaded.predict(data, params))
    except scoring.BadRequest as exc:
        raise VersionRefused(f"{what} fails its check ({check.source}): {exc}") from None
    except Exception as exc:  # the model's own failure, whatever it raises
        raise VersionRefused(
            f"{what} fails its check ({check.source}): {exc.__class__.__name__}: {str(exc)[:300]}"
        ) from None
    rows = scoring._rows(data)
    got = len(answer) if isinstance(answer, list) else None
    if got == 0 or (rows is not None and got is not None and got < rows):
        raise VersionRefused(
            f"{what} fails its check ({check.source}): {got} prediction(s) for {rows} row(s)"
        )
    bad = scoring.non_finite(answer)
    if bad:
        raise VersionRefused(
            f"{what} fails its check ({check.source}): {bad} prediction(s) are NaN or infinite"
        )


def _example_request(loaded: LoadedModel, local: str) -> dict[str, Any] | None:
    """The version's serving input example (``serving_input_example.json``), else its input
    example as ``dataframe_split``; None when it was logged without one."""
    import pandas as pd

    metadata = loaded.model.metadata
    text = metadata.get_serving_input(local)
    if text:
        document = json.loads(text)
        return document if isinstance(document, dict) else None
    example = metadata.load_input_example(local)
    if isinstance(example, pd.DataFrame) and not example.empty:
        return {"dataframe_split": json.loads(example.to_json(orient="split", index=False))}
    return None
