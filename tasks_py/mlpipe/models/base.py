"""The model plugin interface: preprocess / train / continue-training / predict / evaluate."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mlpipe.errors import BadInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class BadRawFile(BadInput):
    """A raw file the plugin cannot read (wrong header, garbage): it gets quarantined."""


@runtime_checkable
class ModelPlugin(Protocol):
    """What a site's model provides. ``params``/``settings`` are plain JSON-able dicts.

    ``metric_goals`` maps each metric :meth:`evaluate` returns to ``"min"`` or
    ``"max"`` (which way is better); the promotion gate uses it.
    """

    name: str
    metric_goals: Mapping[str, str]
    # accepted parameters with their defaults (validated before anything runs)
    preprocess_settings: Mapping[str, Any]
    train_params: Mapping[str, Any]
    continue_params: Mapping[str, Any]

    def validate_raw(self, path: Path) -> None:
        """Raise :class:`BadRawFile` if ``path`` is not a usable raw file."""

    def preprocess(self, path: Path, settings: Mapping[str, Any]) -> pd.DataFrame:
        """One raw file -> one table of features and target (raise BadRawFile if corrupt)."""

    def split(self, data: pd.DataFrame, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Training and held-out evaluation rows."""

    def train(self, data: pd.DataFrame, params: Mapping[str, Any]) -> Any:
        """A new fitted model."""

    def continue_training(self, model: Any, data: pd.DataFrame, params: Mapping[str, Any]) -> Any:
        """``model`` trained further on ``data`` (a new object or ``model`` updated)."""

    def predict(self, model: Any, data: pd.DataFrame) -> pd.DataFrame:
        """Predictions for the rows of ``data`` (keeps identifying columns)."""

    def evaluate(self, model: Any, data: pd.DataFrame) -> dict[str, float]:
        """Metrics of ``model`` on labelled ``data``."""

    def log_model(self, model: Any, sample: pd.DataFrame, registered_name: str) -> str:
        """Log ``model`` into the active MLflow run and register it; returns the model version."""

    def load_model(self, uri: str) -> Any:
        """Load a model logged by :meth:`log_model` from a URI (``models:/name/1``, ``runs:/...``)
        or a local model directory (the tasks pass the version's files in the read cache)."""


@runtime_checkable
class OnnxConvertible(Protocol):
    """What a model plugin provides to be exported to ONNX (``mlpipe convert``) and checked
    against its original (``mlpipe check``). Optional: a plugin without these methods
    gets a clear error from those two tasks (:func:`mlpipe.models.onnx.onnx_support`).
    """

    def to_onnx(self, model: Any, sample: pd.DataFrame) -> bytes:
        """``model`` as a serialized ONNX model (``ModelProto`` bytes); ``sample`` holds rows of
        the kind it predicts (for input shapes and types)."""

    def onnx_inputs(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        """The ONNX model's inputs (input name -> array) for the rows of ``data``."""

    def predict_values(self, model: Any, data: pd.DataFrame) -> np.ndarray:
        """``model``'s raw predictions for the rows of ``data`` (one per row, not rounded):
        what the ONNX model's first output must equal."""


class SklearnModelPlugin:
    """Base for scikit-learn models: MLflow sklearn flavour with signature and input example.

    Subclasses set ``name``, ``metric_goals``, ``feature_columns(data)`` and the
    learning methods. ONNX export (:class:`OnnxConvertible`) is skl2onnx's converter of the
    fitted estimator with one input ``input`` of shape ``[rows, feature columns]``, of
    ``onnx_input_type`` ``"double"`` (float64, the precision scikit-learn computes in) or
    ``"float"`` (float32: smaller, what some runtimes want, not exact).
    """

    name = "sklearn"
    metric_goals: Mapping[str, str] = {}
    preprocess_settings: Mapping[str, Any] = {}
    train_params: Mapping[str, Any] = {}
    continue_params: Mapping[str, Any] = {}
    pip_packages: tuple[str, ...] = ("scikit-learn", "pandas", "numpy")
    onnx_input_type = "double"

    def feature_columns(self, data: pd.DataFrame) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_model(self, model: Any, sample: pd.DataFrame, registered_name: str) -> str:
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature

        example = sample[self.feature_columns(sample)].head(5)
        signature = infer_signature(example, model.predict(example))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            registered_model_name=registered_name,
            # explicit requirements: MLflow would otherwise load the model in a
            # subprocess to guess them
            pip_requirements=[f"{p}=={dist_version(p)}" for p in self.pip_packages],
        )
        return str(info.registered_model_version)

    def load_model(self, uri: str) -> Any:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(uri)

    # ------------------------------------------------------------------ ONNX
    def _onnx_dtype(self) -> Any:
        import numpy as np

        if self.onnx_input_type not in ("double", "float"):
            raise BadInput(
                f"model plugin {self.name}: onnx_input_type {self.onnx_input_type!r} must be "
                "'double' or 'float'"
            )
        return np.float64 if self.onnx_input_type == "double" else np.float32

    def to_onnx(self, model: Any, sample: pd.DataFrame) -> bytes:
        from mlpipe.models.onnx import OnnxUnsupported, import_extra

        skl2onnx = import_extra("skl2onnx", f"converting a {self.name} model to ONNX")
        types = import_extra("skl2onnx.common.data_types", "skl2onnx")
        columns = self.feature_columns(sample)
        self._onnx_dtype()  # a bad onnx_input_type fails before converting
        double = self.onnx_input_type == "double"
        tensor = types.DoubleTensorType if double else types.FloatTensorType
        try:
            proto = skl2onnx.convert_sklearn(
                model, initial_types=[("input", tensor([None, len(columns)]))]
            )
        except Exception as exc:  # skl2onnx: no converter for an estimator, or a bad shape
            raise OnnxUnsupported(
                f"skl2onnx cannot convert the {self.name} model ({type(model).__name__}): "
                f"{exc.__class__.__name__}: {exc}"
            ) from None
        return bytes(proto.SerializeToString())

    def onnx_inputs(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        return {"input": data[self.feature_columns(data)].to_numpy(dtype=self._onnx_dtype())}

    def predict_values(self, model: Any, data: pd.DataFrame) -> np.ndarray:
        import numpy as np

        return np.asarray(model.predict(data[self.feature_columns(data)]), dtype=float)
