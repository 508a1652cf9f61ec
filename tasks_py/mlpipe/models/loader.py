"""Find the model plugin named by ``[model] plugin``: entry point or ``module:Class``."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from mlpipe.errors import BadInput
from mlpipe.models.base import ModelPlugin

ENTRY_POINT_GROUP = "mlpipe.models"
# Shipped plugins, found even when the package metadata is not (re)installed.
BUILTIN = {
    "weather": "mlpipe.models.weather:WeatherModel",
    "weather-torch": "mlpipe.models.weather_torch:WeatherTorchModel",
}


def _import(target: str, where: str) -> object:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadInput(
            f"{where}: cannot import module {module_name!r} for model plugin {target!r}: {exc}; "
            "install the package that provides it or fix the name"
        ) from None
    if not attr:
        raise BadInput(f"{where}: model plugin {target!r} must look like module:Class")
    obj = getattr(module, attr, None)
    if obj is None:
        raise BadInput(f"{where}: module {module_name} has no {attr!r} (model plugin {target!r})")
    return obj


def load_plugin(spec: str, where: str = "[model] plugin") -> ModelPlugin:
    """An instance of the plugin ``spec`` (entry point name or ``module:Class``)."""
    if ":" in spec:
        target = spec
    else:
        found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
        found = {**BUILTIN, **found}
        if spec not in found:
            raise BadInput(
                f"{where}: no model plugin named {spec!r}; known: {', '.join(sorted(found))} "
                f"(entry point group {ENTRY_POINT_GROUP}) or give module:Class"
            )
        target = found[spec]
    factory = _import(target, where)
    plugin = factory() if callable(factory) else factory
    missing = [
        m
        for m in ("preprocess", "train", "continue_training", "predict", "evaluate", "log_model")
        if not callable(getattr(plugin, m, None))
    ]
    if missing:
        raise BadInput(f"{where}: {spec!r} is not a model plugin, it lacks {', '.join(missing)}")
    return plugin  # type: ignore[return-value]
