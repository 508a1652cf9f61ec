"""The model plugin interface: preprocess / train / continue-training / predict / evaluate."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mlpipe.errors import BadInput

if TYPE_CHECKING:
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


class SklearnModelPlugin:
    """Base for scikit-learn models: MLflow sklearn flavour with signature and input example.

    Subclasses set ``name``, ``metric_goals``, ``feature_columns(data)`` and the
    learning methods.
    """

    name = "sklearn"
    metric_goals: Mapping[str, str] = {}
    preprocess_settings: Mapping[str, Any] = {}
    train_params: Mapping[str, Any] = {}
    continue_params: Mapping[str, Any] = {}
    pip_packages: tuple[str, ...] = ("scikit-learn", "pandas", "numpy")

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
