"""What every task needs: config, NGAS client, read cache, MLflow, the model plugin."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlpipe.config import Config, load_config
from mlpipe.models import ModelPlugin, load_plugin
from mlpipe.storage import NgasClient, ReadCache

if TYPE_CHECKING:
    from mlpipe.tasks.model_cache import CachedModel, ModelCache


@dataclass
class TaskContext:
    """Shared by the tasks of one process (thread-safe to read)."""

    config: Config
    _plugin: ModelPlugin | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: Config | None = None) -> TaskContext:
        ctx = cls(config or load_config())
        ctx.setup_mlflow()
        return ctx

    @functools.cached_property
    def ngas(self) -> NgasClient:
        return NgasClient.from_config(self.config)

    @functools.cached_property
    def cache(self) -> ReadCache:
        return ReadCache.from_config(self.config)

    @functools.cached_property
    def models(self) -> ModelCache:
        """Registered model versions through the read cache (MLflow set up first)."""
        from mlpipe.tasks.model_cache import ModelCache

        return ModelCache(self.cache)

    def load_model(self, ref: str) -> tuple[Any, CachedModel]:
        """The plugin's model of ``ref`` (``models:/NAME/VERSION``, ``NAME@ALIAS``) loaded from
        the read cache, and the cached files it came from."""
        cached = self.models.get(ref, self.config.model.alias)
        return self.plugin.load_model(str(cached.path)), cached

    @property
    def plugin(self) -> ModelPlugin:
        if self._plugin is None:
            self._plugin = load_plugin(self.config.model.plugin)
        return self._plugin

    @property
    def data_prefix(self) -> str:
        return self.config.pipeline.data_prefix.strip("/")

    def setup_mlflow(self) -> None:
        """Point the MLflow client at ``[mlflow] tracking_uri`` (and token)."""
        import mlflow

        cfg = self.config.mlflow
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        if cfg.tracking_token:
            os.environ.setdefault("MLFLOW_TRACKING_TOKEN", cfg.tracking_token)
        mlflow.set_tracking_uri(cfg.tracking_uri)  # the registry follows it

    def experiment_id(self, name: str | None = None) -> str:
        """The id of experiment ``name`` (default ``[pipeline] experiment``), created if new."""
        import mlflow

        name = name or self.config.pipeline.experiment
        client = mlflow.MlflowClient()
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        root = self.config.mlflow.artifact_root
        location = f"{root.rstrip('/')}/{name}" if root else None
        try:
            return client.create_experiment(name, artifact_location=location)
        except mlflow.exceptions.MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp = client.get_experiment_by_name(name)  # created concurrently
            if exp is None:
                raise
            return str(exp.experiment_id)
