"""The evaluation rows of a model version: given files, else its training run's held-out rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlpipe.errors import BadInput
from mlpipe.tasks.context import TaskContext

if TYPE_CHECKING:
    import pandas as pd


def eval_frame(
    ctx: TaskContext, params: Mapping[str, Any], training_run: str, task: str
) -> pd.DataFrame:
    """The rows of ``params["eval_data"]`` (NGAS ids or prefixes ending ``/``), else the
    held-out rows ``training_run`` recorded (``eval/heldout.csv``, read through the cache).

    A run without held-out rows is bad input naming ``--eval-data``; any failure reading
    them (a 5xx too) is an error, never "absent".
    """
    from mlpipe.tasks import filesets, frames
    from mlpipe.tasks.mlflow_errors import as_mlpipe_errors

    if params.get("eval_data"):
        ids = params["eval_data"]
        ids = [ids] if isinstance(ids, str) else list(ids)
        return frames.load(ctx, filesets.resolve(ctx.ngas, ids, "eval_data"), "eval_data")
    if not training_run:
        raise BadInput(
            f"{task}: the model version has no training run to take held-out rows from; "
            "give evaluation data with --eval-data"
        )
    what = f"{task}: reading the held-out rows of run {training_run}"
    with as_mlpipe_errors(what):
        frame = frames.load_heldout(ctx.models, training_run, what)
    if frame is None:
        raise BadInput(
            f"{task}: run {training_run} of the model version has no "
            f"{frames.HELDOUT_ARTIFACT}; give evaluation data with --eval-data"
        )
    return frame
