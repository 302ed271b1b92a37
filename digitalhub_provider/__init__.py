"""airflow-provider-digitalhub: DigitalHub's functions and runtimes in Apache Airflow.

``import digitalhub_provider as dh`` gives the SDK (``dh.new_function``, ...).
Everything is loaded on first use, so importing the package (as DAG files do)
costs almost nothing.
"""

from __future__ import annotations

from typing import Any

from digitalhub_provider.version import __version__

_LAZY = {
    "handler": "digitalhub_provider.runtimes.python.handler",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name.startswith("__"):
        raise AttributeError(name)
    api = importlib.import_module("digitalhub_provider.sdk.api")
    try:
        return getattr(api, name)
    except AttributeError:
        raise AttributeError(f"module 'digitalhub_provider' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    import importlib

    return sorted({*globals(), *_LAZY, *importlib.import_module("digitalhub_provider.sdk.api").__all__})


__all__ = ["__version__"]
