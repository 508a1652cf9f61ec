"""The thin task scripts: load-raw, preprocess, train, retrain, infer, promote, convert, check.

Each task runs three ways with the same code:

* ``mlpipe <task> ...`` (the one CLI);
* ``python -m mlpipe.tasks.<module> ...`` (a script on a node, no daemon);
* :func:`mlpipe.tasks.registry.run_task` ``(name, inputs, params)`` for executors.

The registry (:mod:`mlpipe.tasks.registry`) lists every task's
:class:`~mlpipe.tasks.spec.TaskSpec`. This package module imports nothing, so
``python -m mlpipe.tasks.<module>`` runs the module once.
"""
