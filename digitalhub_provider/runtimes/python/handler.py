"""The ``@handler`` decorator (the seed's ``from digitalhub_runtime_python import handler``).

Kept free of imports: DAG files and handler modules import it cheaply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
OUTPUTS_ATTR = "__digitalhub_outputs__"


def handler(outputs: list[str] | None = None, **_ignored: Any) -> Callable[[F], F]:
    """Name the handler's return values: ``@handler(outputs=["data", "string"])``.

    A DataFrame becomes a dataitem of kind table, str/int/float/bool (and lists
    and dicts of them) become results, any other object a pickled artifact.
    """
    names = list(outputs or [])
    if len(set(names)) != len(names):
        raise ValueError(f"@handler(outputs=...) has duplicate names: {names}")

    def decorate(fn: F) -> F:
        setattr(fn, OUTPUTS_ATTR, names)
        return fn

    return decorate


def declared_outputs(fn: Callable[..., Any]) -> list[str] | None:
    return getattr(fn, OUTPUTS_ATTR, None)
