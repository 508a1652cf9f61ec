"""Subcommands of the mlpipe CLI, one module each."""
