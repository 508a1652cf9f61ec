"""Registered model references: ``models:/name/3``, ``models:/name@alias``, ``name@alias``.

Resolution happens at run time, so an alias always means the version it points
to *now*. Only MLflow's "does not exist" counts as absent (errors then name
what exists); any other MLflow failure (login refused, server down, 5xx) raises
:class:`~mlpipe.tasks.mlflow_errors.MlflowFailed` and nothing acts on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from mlpipe.config import ModelConfig
from mlpipe.errors import BadInput
from mlpipe.tasks.mlflow_errors import failing_closed, unless_absent


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else self.uri

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}" if self.version else f"models:/{self.name}"


def default_model(config: ModelConfig) -> str:
    """``models:/<[model] name>@<[model] alias>``: what infer and retrain use by default."""
    return f"models:/{config.name}@{config.alias}"


def model_ref(config: ModelConfig, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The model asked for: input ``model``, else param ``model``, else the default."""
    return str(inputs.get("model") or params.get("model") or default_model(config))


def parse(text: str, default_alias: str = "production") -> ModelRef:
    body = text.removeprefix("models:/").strip("/")
    if not body:
        raise BadInput(f"model {text!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    if "@" in body:
        name, alias = body.split("@", 1)
        return ModelRef(name, alias=alias)
    name, _, version = body.partition("/")
    if version and not version.isdigit():
        raise BadInput(f"model {text!r}: version {version!r} is not a number")
    return ModelRef(name, version=version or None, alias=None if version else default_alias)


def registered(client: MlflowClient, name: str, what: str) -> RegisteredModel:
    """The registered model ``name``; BadInput (naming the registered ones) if there is none."""
    model = unless_absent(what, lambda: client.get_registered_model(name))
    if model is not None:
        return model
    with failing_closed(f"{what}: listing registered models"):
        names = sorted(m.name for m in client.search_registered_models(max_results=200))
    raise BadInput(
        f"{what}: no registered model {name!r} in the MLflow registry; "
        f"registered: {', '.join(names) or 'none'} (train one first)"
    )


def alias_version(client: MlflowClient, name: str, alias: str, what: str) -> str | None:
    """The version ``alias`` points to now, None only if the alias is not set."""
    version = registered(client, name, what).aliases.get(alias)
    return None if version is None else str(version)


def describe(client: MlflowClient, model: RegisteredModel) -> str:
    """``versions 1, 2; aliases production->2`` for a model (for error messages)."""
    with failing_closed(f"listing the versions of {model.name!r}"):
        found = client.search_model_versions(f"name='{model.name}'", max_results=1000)
    versions = ", ".join(str(v) for v in sorted(int(mv.version) for mv in found)) or "none"
    aliases = ", ".join(f"{a}->{v}" for a, v in sorted(model.aliases.items())) or "none"
    return f"versions {versions}; aliases {aliases}"


def resolve(client: MlflowClient, ref: ModelRef) -> ModelRef:
    """The same reference with its version filled in (from the registry, now)."""
    what = f"model {ref}"
    model = registered(client, ref.name, what)
    if ref.alias:
        version = model.aliases.get(ref.alias)
        if version is None:
            raise BadInput(
                f"{what}: alias {ref.alias!r} is not set on {ref.name!r} "
                f"({describe(client, model)}); promote a version with "
                f"mlpipe promote {ref.name} VERSION"
            )
        return ModelRef(ref.name, version=str(version), alias=ref.alias)
    if ref.version is None:
        raise BadInput(f"{what}: give a version or an alias")
    version = ref.version
    if unless_absent(what, lambda: client.get_model_version(ref.name, version)) is None:
        raise BadInput(
            f"{what}: {ref.name!r} has no version {ref.version} ({describe(client, model)})"
        )
    return ref
