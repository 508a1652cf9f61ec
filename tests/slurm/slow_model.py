"""A model plugin whose training outlasts any short Slurm time limit (the TIMEOUT tests).

``[model] plugin = "slurm.slow_model:SlowWeather"`` with ``tests/`` on PYTHONPATH:
the weather model, except that ``train`` first waits ``MLPIPE_TEST_SLOW_TRAIN``
seconds (default 600), the workload a job's time limit must cut short.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from mlpipe.models.weather import WeatherModel


class SlowWeather(WeatherModel):
    name = "slow-weather"

    def train(self, data: Any, params: Mapping[str, Any]) -> Any:
        threading.Event().wait(float(os.environ.get("MLPIPE_TEST_SLOW_TRAIN", "600")))
        return super().train(data, params)
