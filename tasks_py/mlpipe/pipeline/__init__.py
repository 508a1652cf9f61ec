"""Pipelines: a DAG of tasks (``pipeline.yaml``), validated before anything runs,
run by an executor (``local``, ``daliuge``, ``slurm``: all behind the
:class:`~mlpipe.pipeline.executors.Executor` interface).
"""

from mlpipe.pipeline.spec import Pipeline, Step, load_pipeline
from mlpipe.pipeline.validate import Report, validate

__all__ = ["Pipeline", "Report", "Step", "load_pipeline", "validate"]
