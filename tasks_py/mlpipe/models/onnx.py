"""ONNX export support of model plugins: which plugins have it, and the ``[onnx]`` extra.

A plugin supports ``mlpipe convert`` and ``mlpipe check`` when it has the methods
of :class:`~mlpipe.models.base.OnnxConvertible` (every
:class:`~mlpipe.models.base.SklearnModelPlugin` subclass does, through skl2onnx).
The converters and runtimes (skl2onnx, onnx, onnxruntime) are the optional extra
``mlpipe[onnx]``; without it the tasks stop with a message saying how to install it.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from mlpipe.errors import BadInput
from mlpipe.models.base import ModelPlugin, OnnxConvertible

EXTRA = "onnx"
INSTALL_HINT = "pip install 'mlpipe[onnx]'"
METHODS = ("to_onnx", "onnx_inputs", "predict_values")


class OnnxUnsupported(BadInput):
    """The model plugin (or its model) cannot be exported to ONNX."""


def import_extra(module: str, what: str) -> Any:
    """``module`` of the ``[onnx]`` extra; BadInput naming the install command if missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BadInput(
            f"{what} needs the [{EXTRA}] extra ({exc.name or module} is missing): {INSTALL_HINT}"
        ) from None


def plugin_label(plugin: object) -> str:
    """``weather (mlpipe.models.weather:WeatherModel)``: a plugin as error messages name it."""
    cls = type(plugin)
    return f"{getattr(plugin, 'name', cls.__name__)} ({cls.__module__}:{cls.__qualname__})"


def onnx_support(plugin: ModelPlugin, what: str) -> OnnxConvertible:
    """``plugin`` as an :class:`OnnxConvertible`; :class:`OnnxUnsupported` if it is not one."""
    missing = [m for m in METHODS if not callable(getattr(plugin, m, None))]
    if missing:
        raise OnnxUnsupported(
            f"{what}: the model plugin {plugin_label(plugin)} cannot export its models to "
            f"ONNX: it has no {', '.join(missing)} method; give it to_onnx(model, sample) "
            "returning the ONNX model's bytes, onnx_inputs(data) and predict_values(model, "
            "data) (mlpipe.models.OnnxConvertible; SklearnModelPlugin subclasses have them)"
        )
    return cast(OnnxConvertible, plugin)
