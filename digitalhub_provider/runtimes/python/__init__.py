"""The python runtime: what runs inside the job."""

from digitalhub_provider.runtimes.python.handler import handler

__all__ = ["handler"]
