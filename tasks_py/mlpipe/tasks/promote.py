"""``promote``: point an alias (default ``production``) at a model version.

With ``if_better=METRIC`` the challenger is first compared with the current
champion (the version the alias points to) on the same evaluation data: the
given ``eval_data`` files, else the held-out rows recorded by the challenger's
training run. A worse challenger is refused (exit 1, or exit 0 with
``fail_if_refused`` false) and the alias is left alone. Each promotion (or
refusal) is recorded in a ``promote`` run (tag ``mlpipe.verdict``), and why
(``mlpipe.promotion``, e.g. ``refused: rmse 2.9 worse than 2.7 of champion
version 3 on 146 rows``) on that run, on the challenger's version and on the
challenger's training run (with ``mlpipe.promotion_run``).

A ``model`` input that is null or empty (a ``retrain`` that found nothing new)
promotes nothing: a ``promote`` run with verdict ``nothing``, output ``model: null``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Literal

from mlpipe.errors import BadInput, MlpipeError
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.evaluation import eval_frame
from mlpipe.tasks.spec import Inputs, Params, TaskCall, TaskResult, TaskSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient

NAME = "promote"
OWN_PARAMS = {
    "model": "",
    "alias": "",
    "if_better": "",
    "eval_data": [],
    "fail_if_refused": True,
}


Verdict = Literal["promoted", "refused", "nothing"]
TAG_VERDICT = "mlpipe.verdict"
TAG_PROMOTION = "mlpipe.promotion"
TAG_PROMOTION_RUN = "mlpipe.promotion_run"


class GateRefused(MlpipeError):
    """The challenger is worse than the champion on the evaluation data."""


def _better(goal: str, challenger: float, champion: float) -> bool:
    return challenger <= champion if goal == "min" else challenger >= champion


def _comparison(goal: str, challenger: float, champion: float) -> str:
    if challenger == champion:
        return "as good as"
    return "better than" if _better(goal, challenger, champion) else "worse than"


def _nothing(call: TaskCall) -> TaskResult:
    """No model to promote (the producer registered none): a run saying so, nothing moved."""
    import mlflow

    from mlpipe.tasks.runs import record_outputs, task_run

    message = "nothing to promote: no model version was given (the step before registered none)"
    with task_run(call, NAME, {**call.params, "model": ""}) as r:
        mlflow.set_tags({TAG_VERDICT: "nothing", TAG_PROMOTION: message})
        outputs: dict[str, Any] = {"model": None}
        record_outputs(outputs)
    return TaskResult(NAME, r.info.run_id, outputs, message, {"verdict": "nothing"})


def run(call: TaskCall) -> TaskResult:
    import mlflow

    from mlpipe.tasks import modelref
    from mlpipe.tasks.runs import record_outputs, task_run

    ctx, params = call.ctx, call.params
    if "model" in call.inputs and not call.inputs["model"]:
        return _nothing(call)
    asked = str(call.inputs.get("model") or params.get("model") or "")
    if not asked:
        raise BadInput("promote: name the model version to promote (models:/NAME/VERSION)")
    alias = params.get("alias") or ctx.config.model.alias
    client = mlflow.MlflowClient()
    ref = modelref.resolve(client, modelref.parse(asked, alias))
    metric = params.get("if_better") or ""
    plugin = ctx.plugin
    if metric and metric not in plugin.metric_goals:
        raise BadInput(
            f"promote --if-better {metric}: the {plugin.name} model reports "
            f"{', '.join(sorted(plugin.metric_goals))}; pick one of those"
        )
    # None only when the alias is really not set: a failed read raises (fail closed)
    champion = modelref.alias_version(client, ref.name, alias, f"promote: reading {alias}")
    target = f"models:/{ref.name}@{alias}"
    with task_run(call, NAME, {**params, "model": ref.uri, "alias": alias}) as r:
        mlflow.set_tags(
            {
                "mlpipe.model_name": ref.name,
                "mlpipe.model_version": str(ref.version),
                "mlpipe.champion_version": champion or "",
            }
        )
        verdict: Verdict = "promoted"
        version = str(ref.version)
        challenger_run = str(client.get_model_version(ref.name, version).run_id or "")
        if not champion:
            why = f"promoted: first {alias} version (no champion to compare with)"
        elif champion == ref.version:
            why = ""  # already the champion: nothing decided, earlier reasons kept
        elif not metric:
            why = f"promoted: without a gate (no if_better), replacing version {champion}"
        else:
            frame = eval_frame(ctx, params, challenger_run, NAME)
            mine = plugin.evaluate(ctx.load_model(ref.uri)[0], frame)[metric]
            theirs = plugin.evaluate(ctx.load_model(f"models:/{ref.name}/{champion}")[0], frame)
            mlflow.log_metrics({f"challenger_{metric}": mine, f"champion_{metric}": theirs[metric]})
            goal = plugin.metric_goals[metric]
            if not _better(goal, mine, theirs[metric]):
                verdict = "refused"
            why = (
                f"{verdict}: {metric} {mine:.4g} {_comparison(goal, mine, theirs[metric])} "
                f"{theirs[metric]:.4g} of champion version {champion} on {len(frame)} rows"
            )
            if verdict == "refused":
                message = (
                    f"promote: refused {ref.name} version {ref.version}: {metric} {mine:.4g} is "
                    f"worse than {theirs[metric]:.4g} of the champion version {champion} "
                    f"({alias}) on the same {len(frame)} evaluation rows; {alias} stays at "
                    f"version {champion}"
                )
        mlflow.set_tag(TAG_VERDICT, verdict)
        if verdict == "promoted":
            client.set_registered_model_alias(ref.name, alias, version)
            client.set_model_version_tag(
                ref.name, version, "mlpipe.promoted_from", champion or "none"
            )
            message = f"{ref.name} version {ref.version} is now {alias}" + (
                f" (was version {champion})" if champion and champion != ref.version else ""
            )
        if why:
            _record_why(client, ref.name, version, challenger_run, why, r.info.run_id)
        outputs = {"model": target}
        record_outputs(outputs)
    if verdict == "refused" and params.get("fail_if_refused", True):
        raise GateRefused(message)
    return TaskResult(NAME, r.info.run_id, outputs, message, {"verdict": verdict})


def _record_why(
    client: MlflowClient, name: str, version: str, training_run: str, why: str, promote_run: str
) -> None:
    """The reason on the promote run, the challenger's version and its training run."""
    import mlflow

    mlflow.set_tag(TAG_PROMOTION, why)
    tags = {TAG_PROMOTION: why, TAG_PROMOTION_RUN: promote_run}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
        if training_run:
            client.set_tag(training_run, key, value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="registered model name")
    parser.add_argument("version", help="version to promote")
    parser.add_argument("--alias", help="alias to move (default: [model] alias, production)")
    parser.add_argument(
        "--if-better", metavar="METRIC", help="refuse unless at least as good as the champion"
    )
    parser.add_argument(
        "--eval-data", nargs="+", help="NGAS ids/prefixes to evaluate on (default: held-out rows)"
    )


def from_args(args: argparse.Namespace, ctx: TaskContext) -> tuple[Inputs, Params]:
    if not args.version.isdigit():
        raise BadInput(f"promote: version {args.version!r} must be a number")
    params: Params = {"model": f"models:/{args.name}/{args.version}"}
    for key in ("alias", "if_better", "eval_data"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    return {}, params


SPEC = TaskSpec(
    NAME,
    run,
    add_arguments,
    from_args,
    inputs={"model": False},
    outputs=("model",),
    params=OWN_PARAMS,
)

if __name__ == "__main__":
    from mlpipe.tasks.cli import task_main

    sys.exit(task_main(SPEC))
