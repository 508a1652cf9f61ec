"""A validated pipeline turned into jobs: which steps are ready, blocked, and their inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlpipe.pipeline.spec import Pipeline
from mlpipe.pipeline.step import OK_STATUSES, StepJob, StepOutcome
from mlpipe.tasks.registry import get_spec


@dataclass(frozen=True)
class Plan:
    pipeline: Pipeline
    pipeline_run: str
    force: bool = False

    @property
    def deps(self) -> dict[str, set[str]]:
        return self.pipeline.dependencies()

    def ready(self, outcomes: Mapping[str, StepOutcome], running: set[str]) -> list[str]:
        """Steps not started whose dependencies all succeeded."""
        return [
            s
            for s, deps in self.deps.items()
            if s not in outcomes
            and s not in running
            and all(d in outcomes and outcomes[d].status in OK_STATUSES for d in deps)
        ]

    def blocked(self, outcomes: Mapping[str, StepOutcome]) -> list[str]:
        """Steps not started with a dependency that failed or is blocked."""
        return [
            s
            for s, deps in self.deps.items()
            if s not in outcomes
            and any(d in outcomes and outcomes[d].status not in OK_STATUSES for d in deps)
        ]

    def job(self, step_name: str, outcomes: Mapping[str, StepOutcome]) -> StepJob:
        step = self.pipeline.steps[step_name]
        producers = self.pipeline.producers()
        inputs: dict[str, Any] = {}
        for slot, data in step.inputs.items():
            producer = self.pipeline.steps[producers[data]]
            out_slot = next(k for k, v in producer.outputs.items() if v == data)
            inputs[slot] = outcomes[producer.name].outputs[out_slot]
        params = dict(step.params)
        if get_spec(step.task).local_sources:  # relative to the pipeline file
            params.setdefault("base_dir", str(self.pipeline.base_dir))
        return StepJob(
            pipeline=self.pipeline.name,
            step=step.name,
            task=step.task,
            experiment=self.pipeline.experiment,
            pipeline_run=self.pipeline_run,
            inputs=inputs,
            params=params,
            force=self.force,
        )
