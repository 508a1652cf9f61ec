"""Two registered model versions side by side: champion and challenger.

:func:`compare` resolves two references (``NAME@ALIAS``, ``NAME/VERSION``, with or
without ``models:/``) now, and reads for each its training run's parameters and
metrics, the data it was made from (its lineage: ``data.json`` of its run and its
parents', :mod:`mlpipe.tasks.lineage`) and the image artifacts of the run (its plots).

Fails closed like the rest: only MLflow's "does not exist" of the model, version or
alias is bad input (exit 2, naming it); any other failure (a refused login, a 5xx, a
timeout, an unreadable ``data.json``) raises :class:`~mlpipe.errors.MlpipeError`
(exit 1). A run whose artifact listing has no ``data.json`` has no recorded data
(``data`` is None), which is said as such, never taken as "no data".
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from mlpipe.errors import BadInput
from mlpipe.tasks import lineage, modelref
from mlpipe.tasks.mlflow_errors import as_mlpipe_errors

PLOT_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
PLOT_DEPTH = 3  # artifact folders below the run's root searched for plots
MAX_LISTINGS = 64  # artifact folders listed per run at most
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Side:
    """One version as compared: what it is and what it was made with."""

    role: str
    ref: str  # as given, normalised: models:/NAME@ALIAS or models:/NAME/VERSION
    name: str
    version: str
    alias: str  # "" for a version given by number
    run_id: str  # "" when the version was registered without a run
    artifact_uri: str
    created: str
    params: dict[str, str]
    metrics: dict[str, float]
    data: tuple[dict[str, Any], ...] | None  # None: no data.json recorded
    lineage: tuple[str, ...]  # NAME/N of the version and its parents, newest first
    plots: tuple[str, ...]  # artifact paths of the run's images

    @property
    def label(self) -> str:
        alias = f" ({self.alias})" if self.alias else ""
        return f"{self.name} v{self.version}{alias}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "created": self.created,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "data": None if self.data is None else [dict(f) for f in self.data],
            "lineage": list(self.lineage),
            "plots": list(self.plots),
        }


def file_key(item: dict[str, Any]) -> str:
    """A data file as ``id#version`` (the form the ``mlpipe.data_ids`` tags use)."""
    return f"{item.get('id', '')}#{item.get('version', '')}"


@dataclass(frozen=True)
class Comparison:
    champion: Side
    challenger: Side

    def params(self) -> list[tuple[str, str | None, str | None]]:
        """(name, champion's, challenger's) of every parameter either run has."""
        a, b = self.champion.params, self.challenger.params
        return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))]

    def metrics(self) -> list[tuple[str, float | None, float | None, float | None]]:
        """(name, champion's, challenger's, challenger - champion) of every metric."""
        a, b = self.champion.metrics, self.challenger.metrics
        rows = []
        for k in sorted(set(a) | set(b)):
            x, y = a.get(k), b.get(k)
            rows.append((k, x, y, None if x is None or y is None else y - x))
        return rows

    def data(self) -> dict[str, list[str]] | None:
        """Files (``id#version``) used by both, by the champion only, by the challenger
        only; None unless both recorded their data."""
        if self.champion.data is None or self.challenger.data is None:
            return None
        a = {file_key(f) for f in self.champion.data}
        b = {file_key(f) for f in self.challenger.data}
        return {
            "both": sorted(a & b),
            CHAMPION: sorted(a - b),
            CHALLENGER: sorted(b - a),
        }

    def plots(self) -> list[tuple[str, bool, bool]]:
        """(artifact path, champion has it, challenger has it) of every plot."""
        a, b = set(self.champion.plots), set(self.challenger.plots)
        return [(p, p in a, p in b) for p in sorted(a | b)]

    def as_dict(self) -> dict[str, Any]:
        return {
            CHAMPION: self.champion.as_dict(),
            CHALLENGER: self.challenger.as_dict(),
            "params": [{"name": k, CHAMPION: x, CHALLENGER: y} for k, x, y in self.params()],
            "metrics": [
                {"name": k, CHAMPION: x, CHALLENGER: y, "change": d}
                for k, x, y, d in self.metrics()
            ],
            "data": self.data(),
            "plots": [{"path": p, CHAMPION: x, CHALLENGER: y} for p, x, y in self.plots()],
        }


def _iso(ms: int | None) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ms else ""


def _listing(uri: str, what: str) -> list[Any]:
    """The artifacts directly under ``uri`` (a listing failure raises, never "none")."""
    import mlflow

    with as_mlpipe_errors(f"{what}: listing the artifacts at {uri}"):
        return list(mlflow.artifacts.list_artifacts(artifact_uri=uri))


def _walk_plots(root: str, what: str) -> Iterator[str]:
    """Paths (relative to ``root``) of the image artifacts up to ``PLOT_DEPTH`` folders down."""
    folders: list[tuple[str, int]] = [("", 0)]
    listed = 0
    while folders and listed < MAX_LISTINGS:
        folder, depth = folders.pop(0)
        listed += 1
        for entry in _listing(f"{root}/{folder}".rstrip("/"), what):
            path = f"{folder}/{Path(entry.path).name}".lstrip("/")
            if entry.is_dir:
                if depth < PLOT_DEPTH:
                    folders.append((path, depth + 1))
            elif path.lower().endswith(PLOT_SUFFIXES):
                yield path


def side(client: MlflowClient, role: str, text: str) -> Side:
    """The version ``text`` refers to now, with its run's params, metrics, data and plots."""
    ref = modelref.resolve(client, modelref.parse(text))  # unknown: BadInput naming it
    assert ref.version is not None
    name, version = ref.name, ref.version
    what = f"{role} {ref}"
    with as_mlpipe_errors(f"{what}: reading version {version} of {name}"):
        mv = client.get_model_version(name, version)
    run_id = str(mv.run_id or "")
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    data: tuple[dict[str, Any], ...] | None = None
    chain: tuple[str, ...] = (f"{name}/{version}",)
    plots: tuple[str, ...] = ()
    where = ""
    if run_id:
        with as_mlpipe_errors(f"{what}: reading run {run_id}"):
            run = client.get_run(run_id)
        params = dict(sorted(run.data.params.items()))
        metrics = dict(sorted(run.data.metrics.items()))
        where = str(run.info.artifact_uri).rstrip("/")
        top = _listing(where, what)
        if any(Path(e.path).name == lineage.DATA_ARTIFACT and not e.is_dir for e in top):
            found = lineage.of_version(client, name, version, what)
            data, chain = tuple(found.files), found.versions
        plots = tuple(sorted(_walk_plots(where, what)))
    return Side(
        role=role,
        ref=str(ref) if ref.alias else ref.uri,
        name=name,
        version=version,
        alias=ref.alias or "",
        run_id=run_id,
        artifact_uri=where,
        created=_iso(mv.creation_timestamp),
        params=params,
        metrics=metrics,
        data=data,
        lineage=chain,
        plots=plots,
    )


def compare(client: MlflowClient, champion: str, challenger: str) -> Comparison:
    """``champion`` against ``challenger`` (model references), both read now."""
    return Comparison(side(client, CHAMPION, champion), side(client, CHALLENGER, challenger))


def download_plot(item: Side, path: str, dst: Path) -> Path:
    """Plot ``path`` of ``item``'s run as ``dst/path`` (only a listed plot)."""
    import mlflow

    if path not in item.plots:
        raise BadInput(f"{item.role} {item.label}: {path!r} is not one of its plots")
    target = dst / path
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        as_mlpipe_errors(f"{item.role} {item.label}: downloading plot {path}"),
        tempfile.TemporaryDirectory(prefix="mlpipe-plot-", dir=dst) as tmp,
    ):
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"{item.artifact_uri}/{path}", dst_path=tmp
            )
        )
        local.replace(target)
    return target
