"""Pipelines: a DAG of tasks (``pipeline.yaml``), validated before anything runs,
run by an executor (``local`` now; ``daliuge`` and ``slurm`` behind the same
:class:`~mlpipe.pipeline.executors.Executor` interface later).
"""

from mlpipe.pipeline.spec import Pipeline, Step, load_pipeline
from mlpipe.pipeline.validate import Report, validate

__all__ = ["Pipeline", "Report", "Step", "load_pipeline", "validate"]
