"""Exception hierarchy shared by every mlpipe module, and the one exit-code mapping.

Every entry point (``mlpipe ...``, ``python -m mlpipe.tasks.<task>``,
``python -m mlpipe.pipeline.step``) runs through :func:`run_guarded`:
:class:`BadInput` -> exit code 2, any other :class:`MlpipeError` (and
``OSError``) -> 1, Ctrl-C -> 130. Messages must name the file, id or variable
concerned and say what to do.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_INTERRUPTED: Final = 130


class MlpipeError(Exception):
    """A failure with a message fit for the user."""


class BadInput(MlpipeError):
    """The user's input (arguments, config, files) is wrong."""


def exit_code(exc: BaseException) -> int:
    """The exit code an entry point returns for ``exc``."""
    if isinstance(exc, BadInput):
        return EXIT_BAD_INPUT
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def run_guarded(prog: str, func: Callable[[], int]) -> int:
    """``func()``'s exit code; an mlpipe error is printed as ``prog: message`` on stderr."""
    try:
        return func()
    except (MlpipeError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        print(f"{prog}: interrupted", file=sys.stderr)
        return exit_code(exc)
