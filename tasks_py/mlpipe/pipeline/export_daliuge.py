"""``mlpipe pipeline export FILE --format daliuge-lg``: the pipeline as an EAGLE logical graph.

The graph (EAGLE's JSON, schema ``OJS``) has, per step, a ``BashShellApp``
whose ``command`` runs the step on a node with
:mod:`mlpipe.pipeline.executors.daliuge_node` (the job as readable JSON in the
command, its parameters editable in EAGLE), and two ``File`` data nodes: the
step's outcome (linked to the apps of the steps consuming its outputs, on
their input port named after the producer) and its stderr. DALiuGE's
translator (``dlg unroll``, ``partition``, ``map``) turns it into a physical
graph; the ``{port}`` placeholders in each command become the file drops'
paths on the node.
"""

from __future__ import annotations

import json
import shlex
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe import __version__
from mlpipe.config import DaliugeConfig
from mlpipe.pipeline.executors.daliuge import (
    APP_CLASS,
    FILE_CLASS,
    settings_args,
    with_stderr_tail,
)
from mlpipe.pipeline.executors.daliuge_node import MODULE as NODE_MODULE
from mlpipe.pipeline.executors.daliuge_node import TAG_EXECUTOR
from mlpipe.pipeline.plan import Plan

if TYPE_CHECKING:
    from mlpipe.tasks.context import TaskContext

FORMATS = ("daliuge-lg",)
OUTCOME_PORT = "outcome"
STDERR_PORT = "stderr"


def _id(plan: Plan, *parts: str) -> str:
    """Stable ids: the same pipeline exports the same graph."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mlpipe:" + "/".join((plan.pipeline.name, *parts))))


def _field(
    plan: Plan,
    owner: str,
    name: str,
    value: Any,
    description: str,
    usage: str = "NoPort",
    parameter_type: str = "ComponentParameter",
    kind: str = "String",
    readonly: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "defaultValue": "",
        "description": description,
        "readonly": readonly,
        "type": kind,
        "precious": False,
        "options": [],
        "positional": False,
        "keyAttribute": False,
        "id": _id(plan, owner, "field", name),
        "parameterType": parameter_type,
        "usage": usage,
        "encoding": "path" if usage != "NoPort" else "dill",  # ports: the file path
    }


def _node(
    plan: Plan,
    key: str,
    category: str,
    category_type: str,
    name: str,
    description: str,
    fields: list[dict[str, Any]],
    x: float,
    y: float,
) -> dict[str, Any]:
    return {
        "id": _id(plan, key),
        "category": category,
        "categoryType": category_type,
        "name": name,
        "description": description,
        "x": x,
        "y": y,
        "radius": 0,
        "color": "#0059a5" if category_type == "Application" else "#2c2c2c",
        "drawOrderHint": 0,
        "collapsed": False,
        "expanded": False,
        "isGroup": False,
        "subject": None,
        "commitHash": "",
        "dataHash": "",
        "paletteDownloadUrl": "",
        "repositoryUrl": "",
        "inputApplicationName": "",
        "outputApplicationName": "",
        "inputApplicationType": "None",
        "outputApplicationType": "None",
        "inputAppFields": [],
        "outputAppFields": [],
        "fields": fields,
    }


def command(plan: Plan, step: str, settings: DaliugeConfig) -> str:
    """The app's bash command: ``{port}`` placeholders for its outcome, stderr and inputs."""
    job = plan.template(step)
    job = type(job)(**{**json.loads(job.to_json()), "tags": {TAG_EXECUTOR: "daliuge"}})
    args = [shlex.quote(settings.python), "-m", NODE_MODULE, shlex.quote(job.to_json())]
    args.append("{" + OUTCOME_PORT + "}")
    for dep in sorted(plan.deps[step]):
        args += ["--upstream", "{" + dep + "}"]
    args += settings_args(settings)
    return with_stderr_tail(args, "{" + STDERR_PORT + "}")


def logical_graph(plan: Plan, settings: DaliugeConfig) -> dict[str, Any]:
    """The EAGLE logical graph of ``plan`` (a JSON-ready dict)."""
    nodes: list[dict[str, Any]] = []
    links: list[dict[str, str]] = []
    consumers: dict[str, list[str]] = {s: [] for s in plan.order}
    for step in plan.order:
        for dep in sorted(plan.deps[step]):
            consumers[dep].append(step)
    depth: dict[str, int] = {}
    for step in plan.order:
        depth[step] = 1 + max((depth[d] for d in plan.deps[step]), default=-1)
    row: dict[int, int] = {}
    for step in plan.order:
        spec = plan.pipeline.steps[step]
        x = 400.0 * depth[step]
        y = 250.0 * row.setdefault(depth[step], 0)
        row[depth[step]] += 1
        app_key, out_key, err_key = f"app/{step}", f"outcome/{step}", f"stderr/{step}"
        fields = [
            _field(plan, app_key, "dropclass", APP_CLASS, "the DALiuGE application class"),
            _field(
                plan,
                app_key,
                "command",
                command(plan, step, settings),
                f"runs step {step} ({spec.task}) with python -m mlpipe.pipeline.step; "
                "edit the job's params in the JSON",
            ),
            _field(
                plan,
                app_key,
                OUTCOME_PORT,
                "",
                "the step's outcome (JSON)",
                "OutputPort",
                "ApplicationArgument",
                "File",
            ),
            _field(
                plan,
                app_key,
                STDERR_PORT,
                "",
                "the step's stderr",
                "OutputPort",
                "ApplicationArgument",
                "File",
            ),
        ]
        for dep in sorted(plan.deps[step]):
            fields.append(
                _field(
                    plan,
                    app_key,
                    dep,
                    "",
                    f"the outcome of step {dep}",
                    "InputPort",
                    "ApplicationArgument",
                    "File",
                )
            )
        nodes.append(
            _node(
                plan,
                app_key,
                "BashShellApp",
                "Application",
                step,
                f"mlpipe step {step} ({spec.task})",
                fields,
                x,
                y,
            )
        )
        for key, port, what, dy in (
            (out_key, OUTCOME_PORT, "outcome", 0.0),
            (err_key, STDERR_PORT, "stderr", 90.0),
        ):
            data_fields = [
                _field(plan, key, "dropclass", FILE_CLASS, "the DALiuGE data class"),
                _field(
                    plan,
                    key,
                    port,
                    "",
                    f"the {what} of {step}",
                    "InputOutput",
                    "ApplicationArgument",
                    "File",
                ),
            ]
            nodes.append(
                _node(
                    plan,
                    key,
                    "File",
                    "Data",
                    f"{step} {what}",
                    f"{what} of step {step}",
                    data_fields,
                    x + 200.0,
                    y + dy,
                )
            )
            links.append(
                {
                    "from": _id(plan, app_key),
                    "fromPort": _id(plan, app_key, "field", port),
                    "to": _id(plan, key),
                    "toPort": _id(plan, key, "field", port),
                }
            )
        for consumer in consumers[step]:
            links.append(
                {
                    "from": _id(plan, out_key),
                    "fromPort": _id(plan, out_key, "field", OUTCOME_PORT),
                    "to": _id(plan, f"app/{consumer}"),
                    "toPort": _id(plan, f"app/{consumer}", "field", step),
                }
            )
    return {
        "modelData": {
            "filePath": f"{plan.pipeline.name}.graph",
            "fileType": "Graph",
            "shortDescription": f"mlpipe pipeline {plan.pipeline.name}",
            "detailedDescription": (
                f"Generated by mlpipe {__version__} from {plan.pipeline.path.name} "
                "(mlpipe pipeline export --format daliuge-lg)."
            ),
            "repoService": "Unknown",
            "repoBranch": "",
            "repo": "",
            "readonly": False,
            "generatorName": "mlpipe",
            "generatorVersion": __version__,
            "generatorCommitHash": "",
            "schemaVersion": "OJS",
            "lastModifiedName": "",
            "lastModifiedEmail": "",
            "lastModifiedDatetime": 0,
            "numLGNodes": len(nodes),
            "commitHash": "",
            "downloadUrl": "",
            "repositoryUrl": "",
            "signature": "",
        },
        "nodeDataArray": nodes,
        "linkDataArray": links,
    }


def export(path: Path | str, ctx: TaskContext) -> str:
    """The logical graph of the pipeline file ``path`` as JSON (validated first)."""
    from mlpipe.pipeline.runner import check

    pipeline, _ = check(path, ctx)
    plan = Plan(pipeline, pipeline_run=f"lg-{pipeline.name}")
    return json.dumps(logical_graph(plan, ctx.config.daliuge), indent=1)
