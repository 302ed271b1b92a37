"""The SDK's context: the stores a process works with (see :mod:`digitalhub_provider.stores.context`)."""

from __future__ import annotations

from digitalhub_provider.stores.context import Context, get_context, reset_context, use_context

__all__ = ["Context", "get_context", "reset_context", "use_context"]
