"""Exception hierarchy shared by every mlpipe module.

The CLI maps :class:`BadInput` to exit code 2 and any other
:class:`MlpipeError` to exit code 1. Messages must name the file, id or
variable concerned and say what to do.
"""


class MlpipeError(Exception):
    """A failure with a message fit for the user."""


class BadInput(MlpipeError):
    """The user's input (arguments, config, files) is wrong."""
