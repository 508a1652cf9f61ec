"""``pipeline.yaml`` -> :class:`Pipeline` (shape only; meaning is checked by validate).

Format::

    name: weather                 # required; tags the MLflow runs of its steps
    experiment: weather-pipeline  # optional (default: pipeline-<name>)
    outputs: [predictions]        # optional: final data (not warned as unused)
    inputs: [incoming]            # optional: data given when started (mlpipe watch ftp)
    tasks:
      <step name>:
        task: <load-raw|preprocess|train|retrain|infer|promote|convert|check>
        inputs: {<input slot>: <data name>}
        params: {<name>: <value>}
        outputs: {<output slot>: <data name>}
        resources: {time_limit: "02:00:00", cpus: 4, ...}  # Slurm only (mlpipe.slurm.resources)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlpipe.errors import BadInput
from mlpipe.slurm.resources import parse_step_resources

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TOP_KEYS = {"name", "experiment", "outputs", "tasks", "description", "inputs"}
STEP_KEYS = {"task", "inputs", "params", "outputs", "description", "resources"}


@dataclass(frozen=True)
class Step:
    name: str
    task: str
    inputs: dict[str, str] = field(default_factory=dict)  # slot -> data name
    params: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # slot -> data name
    resources: dict[str, Any] = field(default_factory=dict)  # Slurm job resources (checked)


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: dict[str, Step]
    path: Path
    experiment: str
    final_outputs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()  # data names given by the starter (a file set each)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def producers(self) -> dict[str, str]:
        """Data name -> step producing it."""
        return {data: s.name for s in self.steps.values() for data in s.outputs.values()}

    def dependencies(self) -> dict[str, set[str]]:
        """Step -> steps whose outputs it consumes."""
        prod = self.producers()
        return {
            s.name: {prod[d] for d in s.inputs.values() if d in prod} for s in self.steps.values()
        }


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{where}: expected a mapping, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _names(value: Any, where: str) -> dict[str, str]:
    out = _mapping(value, where)
    for key, data in out.items():
        if not isinstance(data, str) or not NAME_RE.match(data):
            raise BadInput(f"{where}.{key}: expected a data name like raw_files, got {data!r}")
    return out


def load_pipeline(path: Path | str) -> Pipeline:
    """Read and shape-check a pipeline file; errors name the file and the key."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: pipeline file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the pipeline file: {exc}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{path}: expected a mapping with name and tasks")
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise BadInput(f"{path}: unknown key(s) {', '.join(unknown)}; known: {sorted(TOP_KEYS)}")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadInput(f"{path}: name: give the pipeline a name like weather-daily, got {name!r}")
    tasks = _mapping(doc.get("tasks"), f"{path}: tasks")
    if not tasks:
        raise BadInput(f"{path}: tasks: the pipeline has no tasks")
    steps: dict[str, Step] = {}
    for step_name, body in tasks.items():
        where = f"{path}: tasks.{step_name}"
        if not NAME_RE.match(step_name):
            raise BadInput(f"{where}: step names are letters, digits, _ . -")
        body = _mapping(body, where)
        extra = sorted(set(body) - STEP_KEYS)
        if extra:
            known = ", ".join(sorted(STEP_KEYS))
            raise BadInput(f"{where}: unknown key(s) {', '.join(extra)}; known: {known}")
        if not isinstance(body.get("task"), str):
            raise BadInput(f"{where}: task: name the task type (e.g. task: train)")
        steps[step_name] = Step(
            name=step_name,
            task=body["task"],
            inputs=_names(body.get("inputs"), f"{where}.inputs"),
            params=_mapping(body.get("params"), f"{where}.params"),
            outputs=_names(body.get("outputs"), f"{where}.outputs"),
            resources=parse_step_resources(body.get("resources"), f"{where}.resources"),
        )
    finals = doc.get("outputs") or []
    if not isinstance(finals, list) or not all(isinstance(f, str) for f in finals):
        raise BadInput(f"{path}: outputs: expected a list of data names")
    given = doc.get("inputs") or []
    if not isinstance(given, list) or not all(
        isinstance(g, str) and NAME_RE.match(g) for g in given
    ):
        raise BadInput(f"{path}: inputs: expected a list of data names like [incoming]")
    experiment = doc.get("experiment") or f"pipeline-{name}"
    return Pipeline(name, steps, path.resolve(), str(experiment), tuple(finals), tuple(given))
