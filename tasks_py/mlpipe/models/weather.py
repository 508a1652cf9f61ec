"""Example model: next-day maximum temperature in Seattle from today's observations.

Raw files are CSVs of daily observations with the columns of the
``vega_datasets`` ``seattle-weather`` table (date, precipitation, temp_max,
temp_min, wind[, weather]). Preprocessing turns each file into features
(today's values, ``lags`` earlier maxima, season as sine/cosine of the day of
year) and the target ``target`` = the next day's ``temp_max``; rows whose next
day is missing are dropped. The model is a standardised linear SGD regressor,
so continuing training is ``partial_fit`` on the new rows. Metrics are on
held-out rows (the latest ``test_fraction`` of days).
"""

# scikit-learn ships no type information; tasks_py/pyproject.toml [tool.mypy] says so per
# module, this line keeps `mypy --strict tasks_py/mlpipe` run without that config quiet:
# mypy: disable-error-code="import-untyped"
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import SGDRegressor
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlpipe.errors import BadInput
from mlpipe.models.base import BadRawFile, SklearnModelPlugin

RAW_COLUMNS = ("date", "precipitation", "temp_max", "temp_min", "wind")
BASE_FEATURES = ("precipitation", "temp_max", "temp_min", "wind", "doy_sin", "doy_cos")
TARGET = "target"
MAX_LAGS = 7


def _number(params: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = params.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"parameter {key}={value!r}: expected a number") from None
    if not low <= number <= high:
        raise BadInput(f"parameter {key}={value!r}: must be between {low} and {high}")
    return number


class WeatherData:
    """The data side of the weather models: raw files, features, split, predictions, metrics.

    Shared by :class:`WeatherModel` (scikit-learn) and
    :class:`mlpipe.models.weather_torch.WeatherTorchModel` (PyTorch): their models only need
    a ``predict(features frame)`` returning one number per row.
    """

    metric_goals: Mapping[str, str] = {"rmse": "min", "mae": "min", "r2": "max"}
    preprocess_settings: Mapping[str, Any] = {"lags": 1}

    # ---------------------------------------------------------------- data
    def _read(self, path: Path) -> pd.DataFrame:
        try:
            frame = pd.read_csv(path)
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise BadRawFile(f"{path.name}: not a CSV file ({exc.__class__.__name__})") from None
        missing = [c for c in RAW_COLUMNS if c not in frame.columns]
        if missing:
            raise BadRawFile(
                f"{path.name}: missing column(s) {', '.join(missing)}; expected a header "
                f"with {', '.join(RAW_COLUMNS)}"
            )
        if frame.empty:
            raise BadRawFile(f"{path.name}: no rows")
        frame = frame[list(RAW_COLUMNS)].copy()
        frame["date"] = pd.to_datetime(frame["date"], errors="coerce")
        for col in RAW_COLUMNS[1:]:
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
        bad = int(frame.isna().any(axis=1).sum())
        if bad > len(frame) // 2:
            raise BadRawFile(f"{path.name}: {bad} of {len(frame)} rows have unreadable values")
        return frame.dropna().sort_values("date").drop_duplicates("date")

    def validate_raw(self, path: Path) -> None:
        self._read(path)

    def preprocess(self, path: Path, settings: Mapping[str, Any]) -> pd.DataFrame:
        lags = int(_number(settings, "lags", 1, 0, MAX_LAGS))
        frame = self._read(path).reset_index(drop=True)
        doy = frame["date"].dt.day_of_year / 365.25 * 2 * np.pi
        frame["doy_sin"], frame["doy_cos"] = np.sin(doy), np.cos(doy)
        one_day = pd.Timedelta(days=1)
        for lag in range(1, lags + 1):
            prev = frame["temp_max"].shift(lag)
            ok = frame["date"] - frame["date"].shift(lag) == lag * one_day
            frame[f"temp_max_lag{lag}"] = prev.where(ok)
        nxt = frame["date"].shift(-1) - frame["date"] == one_day
        frame[TARGET] = frame["temp_max"].shift(-1).where(nxt)
        frame = frame.dropna().reset_index(drop=True)
        frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
        return frame

    def feature_columns(self, data: pd.DataFrame) -> list[str]:
        lags = sorted(
            (c for c in data.columns if c.startswith("temp_max_lag")), key=lambda c: int(c[12:])
        )
        return [*BASE_FEATURES, *lags]

    def split(self, data: pd.DataFrame, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        if not 0 < test_fraction < 1:
            raise BadInput(f"parameter test_fraction={test_fraction}: must be between 0 and 1")
        ordered = data.sort_values("date").reset_index(drop=True)
        cut = int(round(len(ordered) * (1 - test_fraction)))
        if cut < 10 or cut >= len(ordered):
            raise BadInput(
                f"only {len(ordered)} preprocessed rows: too few to hold out {test_fraction:.0%} "
                "for evaluation; give more data"
            )
        return ordered.iloc[:cut], ordered.iloc[cut:]

    def _xy(self, data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        if TARGET not in data.columns:
            raise BadInput(f"the data has no {TARGET!r} column: it is not preprocessed weather")
        return data[self.feature_columns(data)], data[TARGET].to_numpy(dtype=float)

    def predict(self, model: Any, data: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({"date": data["date"]})
        out["predicted_next_temp_max"] = np.asarray(
            model.predict(data[self.feature_columns(data)]), dtype=float
        ).round(4)
        if TARGET in data.columns:
            out[TARGET] = data[TARGET].to_numpy()
        return out

    def evaluate(self, model: Any, data: pd.DataFrame) -> dict[str, float]:
        x, y = self._xy(data)
        pred = np.asarray(model.predict(x), dtype=float)
        return {
            "rmse": float(np.sqrt(mean_squared_error(y, pred))),
            "mae": float(mean_absolute_error(y, pred)),
            "r2": float(r2_score(y, pred)),
        }


class WeatherModel(WeatherData, SklearnModelPlugin):
    """Next-day ``temp_max`` regression on seattle-weather style observations."""

    name = "weather"
    train_params = {"alpha": 1e-4, "max_iter": 1000, "seed": 0}
    continue_params = {"epochs": 20, "alpha": 1e-4}

    # ------------------------------------------------------------ learning
    def train(self, data: pd.DataFrame, params: Mapping[str, Any]) -> Pipeline:
        x, y = self._xy(data)
        reg = SGDRegressor(
            alpha=_number(params, "alpha", 1e-4, 0, 1e3),
            max_iter=int(_number(params, "max_iter", 1000, 1, 1e6)),
            tol=1e-5,
            random_state=int(_number(params, "seed", 0, 0, 2**31)),
        )
        return Pipeline([("scale", StandardScaler()), ("reg", reg)]).fit(x, y)

    def continue_training(
        self, model: Pipeline, data: pd.DataFrame, params: Mapping[str, Any]
    ) -> Pipeline:
        x, y = self._xy(data)
        expected = list(model.feature_names_in_)
        if list(x.columns) != expected:
            raise BadInput(
                f"new data has features {list(x.columns)} but the model was trained on "
                f"{expected}; preprocess with the same settings"
            )
        scaled = model.named_steps["scale"].transform(x)
        reg = model.named_steps["reg"]
        if "alpha" in params:
            reg.set_params(alpha=_number(params, "alpha", 1e-4, 0, 1e3))
        for _ in range(int(_number(params, "epochs", 20, 1, 10_000))):
            reg.partial_fit(scaled, y)
        return model
