"""``check``: a model version and its ONNX model must predict the same on the evaluation rows.

The version (``NAME/VERSION`` or ``NAME@ALIAS``) and the ONNX model its tag
``mlpipe.onnx`` points to (written by ``convert``; with an ``onnx`` input, that
must still be the tag's value) are both loaded through the read cache and run on
the evaluation rows: ``eval_data``, else the held-out rows its training run
recorded. The original's raw predictions (the plugin's ``predict_values``) and
the ONNX model's first output (onnxruntime, inputs from ``onnx_inputs``) agree
on a row when ``|onnx - original| <= atol + rtol * |original|`` (defaults
``rtol`` 1e-5, ``atol`` 1e-5). The ``check`` run gets the figures as metrics
(``rows``, ``rows_beyond``, ``max_abs_diff``, ``max_rel_diff``) and
``mlpipe.verdict`` (``passed``/``failed``); the version gets ``mlpipe.onnx_check``
(the verdict and figures, e.g. ``passed: max |difference| 1.8e-15 on 73 rows
(rtol 1e-05, atol 1e-05)``), ``mlpipe.onnx_check_run`` and
``mlpipe.onnx_max_abs_diff``. A failed check is exit 1 (its run FAILED, so a
pipeline runs it again), naming the worst row: the one furthest beyond the
tolerance.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.errors import BadInput, MlpipeError
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.convert import (
    ONNX_ARTIFACT,
    TAG_ONNX,
    TAG_ONNX_CHECK,
    TAG_ONNX_RUN,
    add_model_arguments,
    model_params,
)
from mlpipe.tasks.spec import Inputs, Params, TaskCall, TaskResult, TaskSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

NAME = "check"
OWN_PARAMS = {"model": "", "eval_data": [], "rtol": 1e-5, "atol": 1e-5}
TAG_VERDICT = "mlpipe.verdict"
TAG_CHECK_RUN = "mlpipe.onnx_check_run"
TAG_MAX_DIFF = "mlpipe.onnx_max_abs_diff"


class OnnxMismatch(MlpipeError):
    """The ONNX model's predictions differ from the original's beyond the tolerance."""


@dataclass(frozen=True)
class Comparison:
    """Original vs ONNX predictions, row by row (the row of the largest excess is ``worst``)."""

    rows: int
    beyond: int  # rows outside the tolerance
    worst: int  # row position furthest beyond the tolerance (or closest to it)
    original: float
    onnx: float
    allowed: float  # atol + rtol * |original| at that row
    max_abs: float
    max_rel: float

    @property
    def ok(self) -> bool:
        return self.beyond == 0

    @property
    def difference(self) -> float:
        return abs(self.onnx - self.original)


def compare(original: np.ndarray, onnx: np.ndarray, rtol: float, atol: float) -> Comparison:
    """Compare per row (outputs with several values per row: the row's worst value)."""
    import numpy as np

    rows = int(original.shape[0]) if original.ndim else 1
    ref = np.asarray(original, dtype=float).reshape(rows, -1)
    got = np.asarray(onnx, dtype=float).reshape(rows, -1)
    diff = np.abs(got - ref)
    allowed = atol + rtol * np.abs(ref)
    same_nan = np.isnan(ref) & np.isnan(got)
    diff = np.where(same_nan, 0.0, np.where(np.isnan(diff), np.inf, diff))
    excess = diff - allowed  # > 0: beyond the tolerance
    flat = int(np.argmax(excess))
    row, col = divmod(flat, ref.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(ref))
    return Comparison(
        rows=rows,
        beyond=int(np.any(excess > 0, axis=1).sum()),
        worst=row,
        original=float(ref[row, col]),
        onnx=float(got[row, col]),
        allowed=float(allowed[row, col]),
        max_abs=float(diff.max()),
        max_rel=float(rel.max()),
    )


def row_label(frame: pd.DataFrame, row: int) -> str:
    """``row 17 (date=2012-11-14)``: the position and the row's non-numeric columns."""
    import pandas as pd

    keys = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    shown = ", ".join(f"{c}={frame[c].iloc[row]}" for c in keys[:3])
    return f"row {row}" + (f" ({shown})" if shown else "")


def _tolerance(params: Any, key: str) -> float:
    value = params.get(key, OWN_PARAMS[key])
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"check: {key}={value!r}: expected a number") from None
    if not number >= 0:  # NaN too
        raise BadInput(f"check: {key}={value!r}: must be 0 or more")
    return number


def _onnx_predict(path: Path, inputs: dict[str, Any], what: str) -> np.ndarray:
    """The first output of the ONNX model at ``path`` (onnxruntime, CPU) for ``inputs``."""
    import numpy as np

    from mlpipe.models.onnx import import_extra

    ort = import_extra("onnxruntime", what)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        first = session.get_outputs()[0].name
        return np.asarray(session.run([first], inputs)[0])
    except Exception as exc:  # onnxruntime's own errors: a bad model, wrong input names/types
        raise OnnxMismatch(
            f"{what}: onnxruntime cannot run the ONNX model on the evaluation rows "
            f"({exc.__class__.__name__}: {exc})"
        ) from None


def run(call: TaskCall) -> TaskResult:
    import mlflow

    from mlpipe.models.onnx import import_extra, onnx_support
    from mlpipe.tasks import modelref
    from mlpipe.tasks.evaluation import eval_frame
    from mlpipe.tasks.mlflow_errors import as_mlpipe_errors
    from mlpipe.tasks.runs import record_outputs, task_run

    ctx, params = call.ctx, call.params
    plugin = onnx_support(ctx.plugin, NAME)
    rtol, atol = _tolerance(params, "rtol"), _tolerance(params, "atol")
    import_extra("onnxruntime", NAME)
    asked = modelref.model_ref(ctx.config.model, call.inputs, params)
    ref = ctx.models.resolve(modelref.parse(asked, ctx.config.model.alias))
    version = str(ref.version)
    what = f"check {ref.uri}"
    client = mlflow.MlflowClient()
    with as_mlpipe_errors(f"{what}: reading the version's tags"):
        tags = dict(client.get_model_version(ref.name, version).tags)
    onnx_uri, onnx_run = tags.get(TAG_ONNX, ""), tags.get(TAG_ONNX_RUN, "")
    if not onnx_uri or not onnx_run:
        raise BadInput(
            f"{what}: the version has no ONNX model (version tags {TAG_ONNX}, {TAG_ONNX_RUN}); "
            f"convert it first: mlpipe convert {ref.name}/{version}"
        )
    given = call.inputs.get("onnx")
    if given and given != onnx_uri:
        raise BadInput(
            f"{what}: input onnx {given} is no longer the version's ONNX model ({TAG_ONNX} = "
            f"{onnx_uri}: converted again since); check that one"
        )
    model, cached = ctx.load_model(ref.uri)
    frame = eval_frame(ctx, params, cached.run_id, NAME)
    with tempfile.TemporaryDirectory(prefix="mlpipe-check-") as tmp:
        with as_mlpipe_errors(f"{what}: reading its ONNX model from run {onnx_run}"):
            local = ctx.models.run_file(client.get_run(onnx_run), ONNX_ARTIFACT, Path(tmp), what)
        if local is None:
            raise BadInput(
                f"{what}: run {onnx_run} ({TAG_ONNX_RUN}) has no {ONNX_ARTIFACT}; "
                f"convert it again: mlpipe convert {ref.name}/{version}"
            )
        original = plugin.predict_values(model, frame)
        onnx = _onnx_predict(local, plugin.onnx_inputs(frame), what)
    if original.size == 0 or onnx.size != original.size:
        raise OnnxMismatch(
            f"{what}: the ONNX model gave {onnx.size} value(s) of shape {onnx.shape} for "
            f"{len(frame)} evaluation rows, the original {original.size} of shape "
            f"{original.shape}"
        )
    result = compare(original, onnx, rtol, atol)
    tolerance = f"rtol {rtol:g}, atol {atol:g}"
    worst = (
        f"worst {row_label(frame, result.worst)}: original {result.original:.6g}, ONNX "
        f"{result.onnx:.6g}, |difference| {result.difference:.3g} > allowed {result.allowed:.3g}"
    )
    if result.ok:
        verdict = "passed"
        why = f"passed: max |difference| {result.max_abs:.3g} on {result.rows} rows ({tolerance})"
    else:
        verdict = "failed"
        why = f"failed: {result.beyond} of {result.rows} rows differ beyond {tolerance}; {worst}"
    with task_run(call, NAME, {**params, "model": asked, "rtol": rtol, "atol": atol}) as r:
        mlflow.set_tags(
            {
                "mlpipe.model_name": ref.name,
                "mlpipe.model_version": version,
                "mlpipe.model_requested": asked,
                TAG_ONNX: onnx_uri,
                TAG_VERDICT: verdict,
                TAG_ONNX_CHECK: why,
            }
        )
        mlflow.log_metrics(
            {
                "rows": result.rows,
                "rows_beyond": result.beyond,
                "max_abs_diff": result.max_abs,
                "max_rel_diff": result.max_rel,
            }
        )
        version_tags = {
            TAG_ONNX_CHECK: why,
            TAG_CHECK_RUN: r.info.run_id,
            TAG_MAX_DIFF: f"{result.max_abs:.6g}",
        }
        for key, value in version_tags.items():
            client.set_model_version_tag(ref.name, version, key, value)
        if not result.ok:  # inside the run: it ends FAILED, a pipeline runs it again
            raise OnnxMismatch(
                f"{what}: the ONNX model {onnx_uri} differs from the original on "
                f"{result.beyond} of {result.rows} evaluation rows beyond {tolerance}; {worst}"
            )
        outputs: dict[str, Any] = {"model": ref.uri}
        record_outputs(outputs)
    summary = f"{ref.name} version {version}: ONNX model {why}"
    return TaskResult(NAME, r.info.run_id, outputs, summary, {"verdict": verdict})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, "to compare on")
    parser.add_argument(
        "--rtol", type=float, help="relative tolerance (default 1e-5): |d| <= atol + rtol*|orig|"
    )
    parser.add_argument("--atol", type=float, help="absolute tolerance (default 1e-5)")


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[Inputs, Params]:
    params = model_params(args)
    for key in ("rtol", "atol"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    return {}, params


SPEC = TaskSpec(
    NAME,
    run,
    add_arguments,
    from_args,
    inputs={"model": False, "onnx": False},
    outputs=("model",),
    params=OWN_PARAMS,
    default_model=True,
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(SPEC))
