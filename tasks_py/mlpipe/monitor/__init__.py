"""``mlpipe monitor``: the erosion monitor (docs/pipeline.md "Erosion monitor").

Layers: :mod:`psi` (the population stability index of one feature, numpy only),
:mod:`trigger` (the rate-limited retrain trigger and its state file) and
:mod:`erosion` (inference batches whose truth has arrived -> error and drift
figures logged to MLflow -> the trigger above a threshold).
"""
