"""A validated pipeline turned into jobs: which steps are ready, blocked, and their inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlpipe.errors import BadInput
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

    @property
    def order(self) -> list[str]:
        """Every step, each after its dependencies (pipeline-file order among equals)."""
        deps, done = self.deps, list[str]()
        while len(done) < len(deps):
            more = [s for s, d in deps.items() if s not in done and d <= set(done)]
            if not more:  # validate() rejects cycles; never loop on one
                raise BadInput(
                    f"pipeline {self.pipeline.name}: steps depend on each other in a cycle"
                )
            done += more
        return done

    def job(self, step_name: str, outcomes: Mapping[str, StepOutcome]) -> StepJob:
        """The step's job with its inputs taken from its producers' ``outcomes``."""
        return self.template(step_name).resolve(outcomes)

    def template(self, step_name: str) -> StepJob:
        """The step's job naming its inputs as producer outputs (``inputs_from``).

        For executors that submit every step up front: the node fills the inputs
        in from the producers' outcome files (``StepJob.resolve``).
        """
        step = self.pipeline.steps[step_name]
        producers = self.pipeline.producers()
        inputs_from: dict[str, list[str]] = {}
        for slot, data in step.inputs.items():
            producer = self.pipeline.steps[producers[data]]
            out_slot = next(k for k, v in producer.outputs.items() if v == data)
            inputs_from[slot] = [producer.name, out_slot]
        params = dict(step.params)
        if get_spec(step.task).local_sources:  # relative to the pipeline file
            params.setdefault("base_dir", str(self.pipeline.base_dir))
        return StepJob(
            pipeline=self.pipeline.name,
            step=step.name,
            task=step.task,
            experiment=self.pipeline.experiment,
            pipeline_run=self.pipeline_run,
            params=params,
            force=self.force,
            inputs_from=inputs_from,
        )
