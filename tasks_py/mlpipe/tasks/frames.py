"""Preprocessed file sets <-> pandas tables, and logging held-out evaluation data."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from mlpipe.errors import BadInput
from mlpipe.tasks import filesets
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.model_cache import ModelCache

HELDOUT_ARTIFACT = "eval/heldout.csv"


def load(ctx: TaskContext, files: filesets.FileSet, what: str) -> pd.DataFrame:
    """Concatenate the CSV files of a set (read through the cache)."""
    frames = []
    for item in filesets.require(files, what):
        path = filesets.fetch(ctx.cache, item)
        try:
            frames.append(pd.read_csv(path))
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise BadInput(
                f"input {what}: NGAS file {item['id']} is not a preprocessed CSV ({exc}); "
                "run preprocess on the raw files and pass its outputs"
            ) from None
    return pd.concat(frames, ignore_index=True)


def log_heldout(frame: pd.DataFrame) -> None:
    """The evaluation rows, so a promotion gate can compare models on the same data."""
    with tempfile.TemporaryDirectory(prefix="mlpipe-eval-") as tmp:
        path = Path(tmp) / Path(HELDOUT_ARTIFACT).name
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(HELDOUT_ARTIFACT).parent))


def load_heldout(models: ModelCache, run_id: str, what: str) -> pd.DataFrame | None:
    """The held-out rows ``run_id`` logged; None only if its artifacts list none.

    Read from the run's artifact location itself, not through ``runs:/``, where
    MLflow reports every failure (a 503 too) as "does not exist": here the
    listing says whether the file is there, and any failure raises. The file of a
    run that has ended is read through the read cache (downloaded once).
    """
    run = models.client.get_run(run_id)
    with tempfile.TemporaryDirectory(prefix="mlpipe-eval-") as tmp:
        local = models.run_file(run, HELDOUT_ARTIFACT, Path(tmp), what)
        return None if local is None else pd.read_csv(local)


def ids_text(files: filesets.FileSet, limit: int = 4000) -> str:
    text = ",".join(f"{i['id']}#{i.get('version', '')}" for i in files)
    return text if len(text) <= limit else f"{len(files)} files (see data.json)"
