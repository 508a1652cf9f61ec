"""Model plugins: selection by name or module:Class; the weather example's data handling."""

from __future__ import annotations

import pytest

from mlpipe.errors import BadInput
from mlpipe.models import BadRawFile, load_plugin
from mlpipe.models.weather import WeatherModel


def test_plugin_by_name_and_dotted_path():
    assert isinstance(load_plugin("weather"), WeatherModel)
    assert isinstance(load_plugin("mlpipe.models.weather:WeatherModel"), WeatherModel)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", "no model plugin named 'nosuch'; known: weather"),
        ("no_such_module:Model", "cannot import module 'no_such_module'"),
        ("mlpipe.models.weather:Nope", "has no 'Nope'"),
        ("mlpipe.models.weather:RAW_COLUMNS", "is not a model plugin, it lacks preprocess"),
    ],
)
def test_bad_plugin_names(spec, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(")):
        load_plugin(spec)


def test_weather_preprocess_targets_the_next_day(tmp_path):
    raw = tmp_path / "w.csv"
    raw.write_text(
        "date,precipitation,temp_max,temp_min,wind,weather\n"
        "2020-01-01,0,10,1,2,sun\n2020-01-02,1,11,2,3,rain\n2020-01-03,0,12,3,4,sun\n"
        "2020-01-05,0,15,3,4,sun\n2020-01-06,0,16,3,4,sun\n"
    )
    frame = WeatherModel().preprocess(raw, {"lags": 1})
    # rows need yesterday (lag 1) and tomorrow (target) without a gap
    assert frame[["date", "temp_max", "temp_max_lag1", "target"]].values.tolist() == [
        ["2020-01-02", 11, 10, 12]
    ]
    with pytest.raises(BadInput, match="parameter lags=9: must be between 0 and 7"):
        WeatherModel().preprocess(raw, {"lags": 9})
    raw.write_text("a,b\n1,2\n")
    with pytest.raises(BadRawFile, match="w.csv: missing column"):
        WeatherModel().validate_raw(raw)
