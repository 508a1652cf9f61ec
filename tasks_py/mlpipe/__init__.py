"""mlpipe: task scripts and storage layer of the mlpipe ML pipeline platform."""

__version__ = "0.1.0"
