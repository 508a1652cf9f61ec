"""MLflow's scoring protocol: request bodies -> model input, predictions -> JSON.

The body is what ``mlflow models serve`` accepts: a JSON object with exactly one of
``dataframe_split``, ``dataframe_records``, ``inputs`` or ``instances`` (optionally
``params``), or CSV (``text/csv``). The columns are cast to the model's signature by
MLflow's own parsers. Every refusal is :class:`BadRequest` with a message that says
what is wrong and what is accepted.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.types import Schema

FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")
PARAMS_KEY = "params"
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
ACCEPTED = (
    f"a JSON object with exactly one of {', '.join(FORMATS)} (MLflow's scoring format), "
    f'e.g. {{"dataframe_split": {{"columns": ["a", "b"], "data": [[1, 2]]}}}}'
)
MAX_MESSAGE = 600


class BadRequest(ValueError):
    """The request cannot be scored; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def mlflow_message(exc: MlflowException) -> str:
    """The useful part of an MLflow error (its schema errors quote the whole input)."""
    text = str(exc.message).strip()
    for marker in ("Error: ", "error: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    text = " ".join(text.split()).strip("'\"")
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def parse(body: bytes, content_type: str, schema: Schema | None) -> tuple[Any, dict[str, Any]]:
    """The model input and the ``params`` of a request body."""
    mime, _, options = (content_type or JSON_TYPE).partition(";")
    mime = mime.strip().lower()
    charset = options.partition("charset=")[2].strip().strip('"').lower() or "utf-8"
    if charset not in ("utf-8", "utf8"):
        raise BadRequest(f"charset {charset}: only UTF-8 bodies are accepted", status=415)
    if mime == CSV_TYPE:
        return _csv(body, schema), {}
    if mime != JSON_TYPE:
        raise BadRequest(
            f"content type {mime!r}: send {JSON_TYPE} ({ACCEPTED}) or {CSV_TYPE}", status=415
        )
    try:
        decoded = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON ({exc}); send {ACCEPTED}") from None
    return parse_json(decoded, schema)


def parse_json(decoded: object, schema: Schema | None) -> tuple[Any, dict[str, Any]]:
    """The model input and ``params`` of a decoded scoring JSON document."""
    from mlflow.utils.proto_json_utils import dataframe_from_parsed_json, parse_tf_serving_input

    if not isinstance(decoded, dict):
        kind = "a list" if isinstance(decoded, list) else f"a JSON {type(decoded).__name__}"
        raise BadRequest(f"the body is {kind}; send {ACCEPTED}")
    given = [k for k in FORMATS if k in decoded]
    other = sorted(k for k in decoded if k not in FORMATS and k != PARAMS_KEY)
    if len(given) != 1:
        keys = ", ".join(sorted(map(str, decoded))) or "none"
        what = "several input fields" if given else "no input field"
        raise BadRequest(f"the body has {what} (keys: {keys}); send {ACCEPTED}")
    if other:
        raise BadRequest(
            f"unknown key(s) {', '.join(other)} next to {given[0]}; only {PARAMS_KEY} may be "
            "given with the input"
        )
    params = decoded.get(PARAMS_KEY) or {}
    if not isinstance(params, dict):
        raise BadRequest(f"{PARAMS_KEY} must be a JSON object, got {type(params).__name__}")
    key = given[0]
    value = decoded[key]
    if value in ([], {}, None):
        raise BadRequest(f"{key} holds no rows; give at least one")
    try:
        if key in ("inputs", "instances"):
            data = parse_tf_serving_input({key: value}, schema=schema)  # type: ignore[no-untyped-call]
        else:
            data = dataframe_from_parsed_json(  # type: ignore[no-untyped-call]
                value, pandas_orient=key[10:], schema=schema
            )
    except MlflowException as exc:
        raise BadRequest(f"{key}: {mlflow_message(exc)}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise BadRequest(f"{key}: cannot be read as model input ({exc})") from None
    if _rows(data) == 0:
        raise BadRequest(f"{key} holds no rows; give at least one")
    return data, params


def _csv(body: bytes, schema: Schema | None) -> Any:
    import pandas as pd

    try:
        text = body.decode("utf-8")
        if schema is not None and schema.has_input_names():
            dtypes = dict(zip(schema.input_names(), schema.pandas_types(), strict=False))
            frame = pd.read_csv(io.StringIO(text), dtype=dtypes)
        else:
            frame = pd.read_csv(io.StringIO(text))
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise BadRequest(
            f"the CSV body cannot be read ({exc}); send a header line and rows"
        ) from None
    if frame.empty:
        raise BadRequest("the CSV body holds no rows; give a header line and at least one row")
    return frame


def _rows(data: Any) -> int | None:
    if isinstance(data, Mapping):
        return None
    try:
        return len(data)
    except TypeError:
        return None


def jsonable(predictions: Any) -> Any:
    """Predictions as JSON values, as MLflow answers them (a table: one object per row)."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return json.loads(predictions.to_json(orient="records"))
    if isinstance(predictions, pd.Series):
        return json.loads(predictions.to_json(orient="records"))
    if isinstance(predictions, np.ndarray):
        return predictions.tolist()
    if isinstance(predictions, np.generic):
        return predictions.item()
    if isinstance(predictions, Mapping):
        return {str(k): jsonable(v) for k, v in predictions.items()}
    if isinstance(predictions, list | tuple):
        return [jsonable(v) for v in predictions]
    return predictions


def non_finite(values: Any) -> int:
    """How many numbers in (nested) JSON values are NaN or infinite."""
    if isinstance(values, float):
        return 0 if math.isfinite(values) else 1
    if isinstance(values, Mapping):
        return sum(non_finite(v) for v in values.values())
    if isinstance(values, list):
        return sum(non_finite(v) for v in values)
    return 0


def dumps(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
