"""NGAS 12.0 protocol double for tests: see :mod:`ngas_double.server`."""

from ngas_double.server import Faults, NgasDouble, StoredFile

__all__ = ["Faults", "NgasDouble", "StoredFile"]
