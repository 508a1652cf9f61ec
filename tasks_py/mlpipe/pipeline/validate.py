"""Check a pipeline before anything runs: tasks, parameters, inputs, cycles, unused outputs."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from mlpipe.errors import BadInput
from mlpipe.models import ModelPlugin
from mlpipe.pipeline.spec import Pipeline
from mlpipe.tasks.invoke import check_inputs, check_params
from mlpipe.tasks.registry import get_spec


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def raise_errors(self, pipeline: Pipeline) -> None:
        if self.errors:
            lines = "\n  ".join(self.errors)
            raise BadInput(f"{pipeline.path}: the pipeline is invalid, nothing was run:\n  {lines}")


def find_cycle(deps: dict[str, set[str]]) -> list[str] | None:
    """A dependency cycle as a list of steps (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(deps.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(deps):
        if node not in state and (found := visit(node)):
            return found
    return None


def validate(pipeline: Pipeline, plugin: ModelPlugin | None, given: Collection[str] = ()) -> Report:
    """Errors and warnings of ``pipeline`` (``plugin`` supplies model parameters).

    ``given``: the pipeline's ``inputs:`` its starter supplies (mlpipe watch ftp);
    a declared input not given is an error (``mlpipe pipeline run`` gives none).
    """
    report = Report()
    produced: dict[str, str] = {data: "the pipeline's inputs" for data in pipeline.inputs}
    for data in pipeline.inputs:
        if data not in given:
            report.errors.append(
                f"inputs: {data!r} is given when the pipeline is started for a file "
                "(mlpipe watch ftp, [watch] input); run it that way"
            )
    for step in pipeline.steps.values():
        for data in step.outputs.values():
            if data in produced:
                report.errors.append(
                    f"data {data!r} is produced by both {produced[data]} and {step.name}; "
                    "give one of them another name"
                )
            produced.setdefault(data, step.name)
    consumed: set[str] = set()
    for step in pipeline.steps.values():
        where = f"step {step.name} ({step.task})"
        try:
            spec = get_spec(step.task)
        except BadInput as exc:
            report.errors.append(f"{where}: {exc}")
            continue
        problems = check_params(spec, step.params, plugin) + check_inputs(
            spec, step.inputs, step.params
        )
        report.errors += [f"{where}: {p}" for p in problems]
        for slot, data in step.inputs.items():
            consumed.add(data)
            if data not in produced:
                report.errors.append(
                    f"{where}: input {slot} = {data!r} is produced by no step; produced: "
                    f"{', '.join(sorted(produced)) or 'nothing'}"
                )
        if "model" in step.inputs and step.params.get("model"):
            report.errors.append(f"{where}: model given both as input and as parameter")
        for slot in step.outputs:
            if slot not in spec.outputs:
                report.errors.append(
                    f"{where}: unknown output {slot!r}; known: {', '.join(spec.outputs)}"
                )
    cycle = find_cycle(pipeline.dependencies())
    if cycle:
        report.errors.append(f"the tasks form a cycle: {' -> '.join(cycle)}")
    for data, step_name in sorted(produced.items()):
        if data not in consumed and data not in (*pipeline.final_outputs, *pipeline.inputs):
            report.warnings.append(
                f"output {data!r} of step {step_name} is needed by no step "
                "(list it under outputs: if it is a final result)"
            )
    for data in pipeline.final_outputs:
        if data not in produced:
            report.errors.append(f"outputs: {data!r} is produced by no step")
    return report
