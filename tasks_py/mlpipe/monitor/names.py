"""What the erosion monitor writes to MLflow, for its readers (the results site)."""

from __future__ import annotations

MONITOR_TASK = "monitor"  # tag mlpipe.task of a monitor run
DRIFT = "psi_max"  # the drift figure: the largest PSI of the features
FIGURES = (DRIFT, "rmse", "mae")  # the figures over time, each with its threshold when set


def threshold_metric(figure: str) -> str:
    """The metric holding the threshold in force for ``figure`` at each step."""
    return f"{figure}_threshold"
