"""Slurm for mlpipe: job resources, the sbatch script template, the Slurm command line.

``resources`` (checks and merges the ``[slurm]`` settings and a step's
``resources:``), ``script`` (renders ``templates/job.sbatch``), ``cli`` (runs
``sbatch``/``sacct``/``squeue``/``scancel`` and reads their answers),
``transport`` (where they run and the job files live: this host, or a remote
login node over SSH with fabric). The executor using them is
:mod:`mlpipe.pipeline.executors.slurm`. This package imports nothing above
``mlpipe.config``.
"""
