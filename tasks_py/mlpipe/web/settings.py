"""What the results site shows, and where it listens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlpipe.errors import BadInput

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


@dataclass(frozen=True)
class WebSettings:
    """``experiments``: MLflow experiments whose runs (and their output files) are public;
    ``models``: registered model names shown; ``refresh``: seconds a listing is reused;
    ``max_plot_rows``: rows read from one predictions file for a plot;
    ``max_plot_bytes``: predictions files larger than this are not plotted."""

    experiments: tuple[str, ...]
    models: tuple[str, ...]
    refresh: float = 15.0
    max_runs: int = 200
    max_plot_rows: int = 5000
    max_plot_bytes: int = 20 * 1024 * 1024
    title: str = "mlpipe results"
    alias: str = "production"  # the alias whose version's metrics the model list shows

    def __post_init__(self) -> None:
        if not self.experiments:
            raise BadInput(
                "mlpipe web: no experiment to publish; give --experiment NAME (the pipeline's "
                "experiment, e.g. seattle-weather-pipeline) at least once"
            )
        if not self.models:
            raise BadInput("mlpipe web: no registered model to show; give --model NAME")
        for what, names in (("--experiment", self.experiments), ("--model", self.models)):
            for name in names:
                if not NAME_RE.match(name):
                    raise BadInput(
                        f"mlpipe web {what} {name!r}: must be 1-128 letters, digits, '.', '_' "
                        "or '-', starting with a letter or digit"
                    )
        if self.refresh < 0 or self.max_runs < 1 or self.max_plot_rows < 1:
            raise BadInput("mlpipe web: --refresh must be >= 0, --max-runs and rows >= 1")
