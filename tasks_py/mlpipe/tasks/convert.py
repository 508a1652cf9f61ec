"""``convert``: a registered model version -> its ONNX model, stored on NGAS and tagged on it.

The version (``NAME/VERSION``, or ``NAME@ALIAS`` resolved when the task starts)
is loaded through the read cache and exported by the model plugin's
``to_onnx(model, sample)`` (:class:`~mlpipe.models.base.OnnxConvertible`; skl2onnx
for scikit-learn plugins), ``sample`` being the held-out rows its training run
recorded (or ``eval_data``). The ONNX model must pass ``onnx.checker``; it is
logged as the artifact ``onnx/model.onnx`` of the ``convert`` run (artifacts go
to NGAS through the tracking server, like every other), and the version is
tagged ``mlpipe.onnx`` = that artifact's URI, ``mlpipe.onnx_run`` = the run and
``mlpipe.onnx_check`` = ``not checked`` (until ``check`` runs). A plugin without
``to_onnx`` is bad input (exit 2) naming what to add; so is a missing
``[onnx]`` extra (``pip install 'mlpipe[onnx]'``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlpipe.errors import MlpipeError
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.spec import Inputs, Params, TaskCall, TaskResult, TaskSpec

NAME = "convert"
OWN_PARAMS = {"model": "", "eval_data": []}
ONNX_ARTIFACT = "onnx/model.onnx"
TAG_ONNX = "mlpipe.onnx"  # version tag: the ONNX model's artifact URI
TAG_ONNX_RUN = "mlpipe.onnx_run"  # version tag: the convert run holding it
TAG_ONNX_CHECK = "mlpipe.onnx_check"  # version tag: the check's verdict and figures
NOT_CHECKED = "not checked"


class InvalidOnnx(MlpipeError):
    """The plugin's converter produced bytes that are not a valid ONNX model."""


def _validated(data: bytes, what: str) -> int:
    """The opset of the ONNX model ``data``; InvalidOnnx if onnx.checker rejects it."""
    from mlpipe.models.onnx import import_extra

    onnx = import_extra("onnx", what)
    try:
        proto = onnx.load_model_from_string(data)
        onnx.checker.check_model(proto)
    except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError
        raise InvalidOnnx(
            f"{what}: the model plugin's to_onnx gave no valid ONNX model "
            f"({exc.__class__.__name__}: {exc}); nothing was stored"
        ) from None
    versions = [int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions, default=0)


def run(call: TaskCall) -> TaskResult:
    import mlflow

    from mlpipe.models.onnx import import_extra, onnx_support
    from mlpipe.tasks import modelref
    from mlpipe.tasks.evaluation import eval_frame
    from mlpipe.tasks.runs import record_outputs, task_run

    ctx, params = call.ctx, call.params
    converter = onnx_support(ctx.plugin, NAME)  # before anything is read
    import_extra("onnx", NAME)
    asked = modelref.model_ref(ctx.config.model, call.inputs, params)
    ref = ctx.models.resolve(modelref.parse(asked, ctx.config.model.alias))
    model, cached = ctx.load_model(ref.uri)  # before the run: a missing version starts none
    version = str(ref.version)
    sample = eval_frame(ctx, params, cached.run_id, NAME)
    what = f"convert {ref.uri}"
    client = mlflow.MlflowClient()
    with (
        task_run(call, NAME, {**params, "model": asked}) as r,
        tempfile.TemporaryDirectory(prefix="mlpipe-onnx-") as tmp,
    ):
        mlflow.set_tags(
            {
                "mlpipe.model_name": ref.name,
                "mlpipe.model_version": version,
                "mlpipe.model_requested": asked,
            }
        )
        data = converter.to_onnx(model, sample)
        opset = _validated(data, what)
        local = Path(tmp) / Path(ONNX_ARTIFACT).name
        local.write_bytes(data)
        mlflow.log_artifact(str(local), artifact_path=str(Path(ONNX_ARTIFACT).parent))
        uri = str(mlflow.get_artifact_uri(ONNX_ARTIFACT))
        mlflow.log_metrics({"onnx_bytes": len(data), "onnx_opset": opset})
        mlflow.set_tag(TAG_ONNX, uri)
        run_id = r.info.run_id
        tags = {TAG_ONNX: uri, TAG_ONNX_RUN: run_id, TAG_ONNX_CHECK: f"{NOT_CHECKED} ({run_id})"}
        for key, value in tags.items():
            client.set_model_version_tag(ref.name, version, key, value)
        outputs: dict[str, Any] = {"model": ref.uri, "onnx": uri}
        record_outputs(outputs)
    summary = f"{ref.name} version {version}: ONNX model ({len(data)} bytes, opset {opset}) {uri}"
    return TaskResult(NAME, run_id, outputs, summary, {"onnx": uri, "bytes": len(data)})


def add_model_arguments(parser: argparse.ArgumentParser, purpose: str) -> None:
    """The positional model reference and ``--eval-data`` of convert and check."""
    parser.add_argument(
        "model", help="NAME@ALIAS, NAME/VERSION or models:/... (NAME alone: [model] alias)"
    )
    parser.add_argument(
        "--eval-data",
        nargs="+",
        help=f"NGAS ids/prefixes {purpose} (default: the held-out rows of its training run)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, "giving the sample rows")


def model_params(args: argparse.Namespace) -> Params:
    from mlpipe.tasks import modelref

    modelref.parse(args.model)  # a malformed reference is bad input before anything runs
    params: Params = {"model": args.model}
    if args.eval_data:
        params["eval_data"] = args.eval_data
    return params


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[Inputs, Params]:
    return {}, model_params(args)


SPEC = TaskSpec(
    NAME,
    run,
    add_arguments,
    from_args,
    inputs={"model": False},
    outputs=("model", "onnx"),
    params=OWN_PARAMS,
    default_model=True,
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(SPEC))
