"""Progress bars for large transfers: shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from typing import Protocol

# Transfers smaller than this never get a bar.
MIN_BAR_BYTES = 8 * 1024 * 1024


class Progress(Protocol):
    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


class _NoProgress:
    def update(self, n: int) -> None:
        return None

    def close(self) -> None:
        return None


def progress_bar(total: int | None, label: str, enabled: bool | None = None) -> Progress:
    """A tqdm bar on stderr if ``enabled`` (default: stderr is a TTY and total is large)."""
    if enabled is None:
        enabled = sys.stderr.isatty() and (total is None or total >= MIN_BAR_BYTES)
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(
        total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr
    )
