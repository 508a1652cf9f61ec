"""The population stability index (PSI) of one feature: how far the values of a batch
(``actual``) are distributed from those a model was trained on (``expected``).

Bins: ``bins`` quantiles of ``expected`` (equal shares of the training values; edges
that coincide, as with many equal values, are merged), the outer bins open-ended. A
value equal to an edge goes to the bin above it. Each side's share per bin is its count
over its total; a share of 0 counts as :data:`EMPTY_SHARE`, so an empty bin adds a
large but finite term. PSI = sum over bins of (actual - expected) * ln(actual / expected):
0 for the same shares, about 0.1 for a small shift, above 0.25 for a large one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from mlpipe.errors import BadInput

EMPTY_SHARE = 1e-4
Values = Sequence[float] | npt.NDArray[np.float64]


def _finite(values: Values, what: str) -> npt.NDArray[np.float64]:
    given: npt.NDArray[np.float64] = np.asarray(values, dtype=np.float64)
    array: npt.NDArray[np.float64] = given[np.isfinite(given)]
    if array.size == 0:
        raise BadInput(f"PSI: {what} has no finite value")
    return array


def edges(expected: Values, bins: int) -> npt.NDArray[np.float64]:
    """The inner bin edges: the ``1/bins .. (bins-1)/bins`` quantiles of ``expected``."""
    if bins < 2:
        raise BadInput(f"PSI: at least 2 bins, got {bins}")
    values = _finite(expected, "the expected (training) data")
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def shares(
    values: Values, inner_edges: npt.NDArray[np.float64], what: str
) -> npt.NDArray[np.float64]:
    """The share of ``values`` in each bin (``len(inner_edges) + 1`` bins)."""
    array = _finite(values, what)
    counts = np.bincount(
        np.searchsorted(inner_edges, array, side="right"), minlength=inner_edges.size + 1
    )
    return counts.astype(float) / array.size


def psi(expected: Values, actual: Values, bins: int = 10) -> float:
    """The PSI of ``actual`` against ``expected`` (NaN and infinite values are left out)."""
    inner = edges(expected, bins)
    want = np.maximum(shares(expected, inner, "the expected (training) data"), EMPTY_SHARE)
    got = np.maximum(shares(actual, inner, "the batch"), EMPTY_SHARE)
    return float(np.sum((got - want) * np.log(got / want)))
