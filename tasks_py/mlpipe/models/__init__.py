"""Pluggable models: the interface the tasks call and how a site's model is found.

A site brings its own model by writing a class with the methods of
:class:`ModelPlugin` (subclassing :class:`SklearnModelPlugin` gives MLflow
logging/loading for scikit-learn estimators, and ONNX export: :class:`OnnxConvertible`,
:mod:`mlpipe.models.onnx`) and naming it in ``[model] plugin``: either an entry point
name of the group ``mlpipe.models`` or ``module:Class``.
"""

from mlpipe.models.base import BadRawFile, ModelPlugin, OnnxConvertible, SklearnModelPlugin
from mlpipe.models.loader import ENTRY_POINT_GROUP, load_plugin

__all__ = [
    "ENTRY_POINT_GROUP",
    "BadRawFile",
    "ModelPlugin",
    "OnnxConvertible",
    "SklearnModelPlugin",
    "load_plugin",
]
