"""Server-side figures (PNG or SVG bytes), drawn with matplotlib's object API (no pyplot,
no display, safe to call from several threads)."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from typing import Literal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Format = Literal["png", "svg"]
FORMATS: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}
_LOCK = threading.Lock()  # matplotlib's font cache and text layout are not thread-safe


def _render(fig: Figure, fmt: Format) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with _LOCK:
        fig.savefig(buf, format=fmt, dpi=100, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


def metric_over_versions(
    model: str, metric: str, points: Sequence[tuple[int, float]], fmt: Format
) -> bytes:
    """``metric`` of each version of ``model`` (x: version number)."""
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    ax.plot(xs, ys, marker="o", color="#1f6fb2")
    ax.set_xticks(xs)
    ax.set_xlabel("model version")
    ax.set_ylabel(metric)
    ax.set_title(f"{model}: {metric} by version")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _render(fig, fmt)


def predicted_vs_actual(
    title: str, actual: Sequence[float], predicted: Sequence[float], fmt: Format
) -> bytes:
    """Scatter of predicted against actual values, with the y = x line."""
    fig = Figure(figsize=(5.2, 5.2))
    ax = fig.add_subplot()
    ax.scatter(actual, predicted, s=6, alpha=0.5, color="#1f6fb2")
    low = min(min(actual), min(predicted))
    high = max(max(actual), max(predicted))
    ax.plot([low, high], [low, high], color="#c0392b", linewidth=1, label="predicted = actual")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _render(fig, fmt)


def figure_over_time(
    title: str,
    figure: str,
    points: Sequence[tuple[int, float]],
    threshold: Sequence[tuple[int, float]],
    fmt: Format,
) -> bytes:
    """``figure`` at each batch time (x: milliseconds since the epoch, shown as UTC dates)
    and the threshold in force (a dashed step line, drawn on to the last batch; none when
    ``threshold`` is empty). In SVG the two lines have the ids ``figure`` and ``threshold``."""
    import numpy as np

    def times(steps: Sequence[int]) -> np.ndarray:
        return np.array(steps, dtype="datetime64[ms]")

    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    steps = [p[0] for p in points]
    ax.plot(
        times(steps),
        [p[1] for p in points],
        marker="o",
        color="#1f6fb2",
        label=figure,
        gid="figure",
    )
    if threshold:
        xs, ys = [p[0] for p in threshold], [p[1] for p in threshold]
        if steps and steps[-1] > xs[-1]:
            xs, ys = [*xs, steps[-1]], [*ys, ys[-1]]
        ax.plot(
            times(xs),
            ys,
            drawstyle="steps-post",
            linestyle="--",
            color="#c0392b",
            label="threshold",
            gid="threshold",
        )
    ax.set_xlabel("batch time (UTC)")
    ax.set_ylabel(figure)
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(True, alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _render(fig, fmt)
