"""Registered model references: ``models:/name/3``, ``models:/name@alias``, ``name@alias``.

Resolution happens at run time, so an alias always means the version it points
to *now*. Errors name what exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlpipe.errors import BadInput


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


def _registered_names(client: MlflowClient) -> list[str]:
    return sorted(m.name for m in client.search_registered_models(max_results=200))


def describe(client: MlflowClient, name: str) -> str:
    """``versions 1, 2; aliases production->2`` for a model (for error messages)."""
    model = client.get_registered_model(name)
    versions = sorted(
        int(v.version) for v in client.search_model_versions(f"name='{name}'", max_results=1000)
    )
    aliases = ", ".join(f"{a}->{v}" for a, v in sorted(model.aliases.items())) or "none"
    return f"versions {', '.join(map(str, versions)) or 'none'}; aliases {aliases}"


def resolve(client: MlflowClient, ref: ModelRef) -> ModelRef:
    """The same reference with its version filled in (from the registry, now)."""
    try:
        client.get_registered_model(ref.name)
    except MlflowException:
        names = _registered_names(client)
        raise BadInput(
            f"model {ref}: no registered model {ref.name!r} in the MLflow registry; "
            f"registered: {', '.join(names) or 'none'} (train one first)"
        ) from None
    if ref.alias:
        try:
            mv = client.get_model_version_by_alias(ref.name, ref.alias)
        except MlflowException:
            raise BadInput(
                f"model {ref}: alias {ref.alias!r} is not set on {ref.name!r} "
                f"({describe(client, ref.name)}); promote a version with "
                f"mlpipe promote {ref.name} VERSION"
            ) from None
        return ModelRef(ref.name, version=str(mv.version), alias=ref.alias)
    if ref.version is None:
        raise BadInput(f"model {ref}: give a version or an alias")
    try:
        client.get_model_version(ref.name, ref.version)
    except MlflowException:
        raise BadInput(
            f"model {ref}: {ref.name!r} has no version {ref.version} ({describe(client, ref.name)})"
        ) from None
    return ref
