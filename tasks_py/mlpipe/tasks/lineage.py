"""The data a model version was made from: its run's ``data.json``, and its parents'.

``train`` and ``retrain`` log ``data.json`` in the run of every version they
register: ``{"data": [file set], "parent": "models:/NAME/N"}`` (``parent``
only for retrain). The lineage of a version is the data of its own run plus
that of every parent, followed back to the version trained from scratch.

Reading fails closed: a lineage that cannot be read (MLflow or NGAS behind it
down, a 401, a 5xx, a version without a run or without ``data.json``) is an
error, never an empty lineage, so nothing takes data as "new" on an unknown
answer. Given the :class:`~mlpipe.tasks.model_cache.ModelCache`, the ``data.json``
of a run that has ended is read through the read cache (downloaded once).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient

from mlpipe.errors import BadInput, MlpipeError
from mlpipe.tasks.filesets import FileSet
from mlpipe.tasks.mlflow_errors import as_mlpipe_errors

if TYPE_CHECKING:
    from mlpipe.tasks.model_cache import ModelCache

DATA_ARTIFACT = "data.json"


class LineageUnreadable(MlpipeError):
    """The recorded data of a version (or of one of its parents) could not be read."""


@dataclass(frozen=True)
class Lineage:
    """The files behind version ``version`` of ``name``; ``versions``: ``NAME/N`` of it and
    its parents, newest first."""

    name: str
    version: str
    versions: tuple[str, ...]
    files: FileSet

    def unseen(self, files: Iterable[dict[str, Any]]) -> FileSet:
        """The entries of ``files`` it did not use (the same id with other bytes is new)."""
        used = {_key(f) for f in self.files}
        return [f for f in files if _key(f) not in used]


def _key(item: dict[str, Any]) -> tuple[str, str]:
    """A file by id and content: its checksum, else its NGAS version."""
    checksum = item.get("checksum")
    return (str(item["id"]), f"crc:{checksum}" if checksum else f"v:{item.get('version')}")


def _read_data_json(
    client: MlflowClient, run_id: str, what: str, models: ModelCache | None = None
) -> dict[str, Any]:
    """``data.json`` of ``run_id``, read from the run's artifact location itself.

    Not through ``runs:/``: MLflow reports every failure there (a 503 too) as
    "does not exist".
    """
    import mlflow
    import requests
    from mlflow.exceptions import MlflowException

    with as_mlpipe_errors(f"{what}: reading run {run_id}"):
        run = client.get_run(run_id)
    where = str(run.info.artifact_uri).rstrip("/")
    with tempfile.TemporaryDirectory(prefix="mlpipe-lineage-") as tmp:
        try:
            if models is None:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{where}/{DATA_ARTIFACT}", dst_path=tmp
                )
            else:
                found = models.run_file(run, DATA_ARTIFACT, Path(tmp))
                if found is None:
                    raise LineageUnreadable(
                        f"{what}: run {run_id} has no {DATA_ARTIFACT} at {where}; "
                        "nothing is taken as new data"
                    )
                local = str(found)
            doc = json.loads(Path(local).read_text(encoding="utf-8"))
        except LineageUnreadable:
            raise
        except (
            MlflowException,
            requests.RequestException,
            MlpipeError,
            OSError,
            ValueError,
        ) as exc:
            first = " ".join(str(exc).split())[:600] or exc.__class__.__name__
            raise LineageUnreadable(
                f"{what}: cannot read {DATA_ARTIFACT} of run {run_id} at {where} ({first}); "
                "nothing is taken as new data"
            ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise LineageUnreadable(
            f"{what}: {DATA_ARTIFACT} of run {run_id} lists no data; nothing is taken as new data"
        )
    return doc


def of_version(
    client: MlflowClient, name: str, version: str, what: str, models: ModelCache | None = None
) -> Lineage:
    """The lineage of ``models:/name/version`` (raises unless every part was read)."""
    from mlpipe.tasks import modelref

    files: FileSet = []
    seen: list[str] = []
    current: tuple[str, str] | None = (name, version)
    while current is not None:
        at_name, at_version = current
        if f"{at_name}/{at_version}" in seen:
            break
        seen.append(f"{at_name}/{at_version}")
        with as_mlpipe_errors(f"{what}: reading version {at_version} of {at_name}"):
            run_id = str(client.get_model_version(at_name, at_version).run_id or "")
        if not run_id:
            raise BadInput(
                f"{what}: version {at_version} of {at_name} was registered without a run, so "
                "the data it was made from is unknown; retrain without new_only"
            )
        doc = _read_data_json(client, run_id, what, models)
        files.extend(f for f in doc["data"] if isinstance(f, dict) and f.get("id"))
        parent = doc.get("parent")
        current = None
        if isinstance(parent, str) and parent:
            ref = modelref.parse(parent)
            if ref.version is None:
                raise LineageUnreadable(
                    f"{what}: run {run_id} names its parent {parent!r} without a version"
                )
            current = (ref.name, ref.version)
    return Lineage(name, version, tuple(seen), files)
