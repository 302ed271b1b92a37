"""Helpers shared by the workflows (run inside the SDK environment: standard library only).

A workflow reads its parameters from ``WF_*`` environment variables, does its SDK calls and
prints one JSON line with what it observed; the pytest side asserts on it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

# Inline code of the python functions: the handlers run locally, in the SDK's process.
CODE = """
import pandas as pd
from digitalhub_runtime_python import handler


@handler(outputs=["table", "total"])
def make_table(n: int, factor: int):
    df = pd.DataFrame({"i": list(range(n)), "v": [i * factor for i in range(n)]})
    return df, int(df["v"].sum())


@handler(outputs=["sum"])
def add(a: int, b: int):
    return a + b


def explode(n: int):
    raise ValueError(f"exploded with n={n}")
"""
PYTHON_VERSION = f"PYTHON3_{sys.version_info.minor}"


def param(name: str) -> str:
    return os.environ[f"WF_{name.upper()}"]


def describe(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


def error_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, str] | None:
    """The exception the call raised (class name and message), or None when it returned."""
    try:
        call(*args, **kwargs)
    except Exception as exc:
        return describe(exc)
    return None


def ids_or_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[str] | dict[str, str]:
    """The ids of the entities the call returned, or the exception it raised."""
    try:
        return [entity.id for entity in call(*args, **kwargs)]
    except Exception as exc:
        return describe(exc)


def relationships(entity: Any) -> list[dict[str, Any]]:
    rels = getattr(entity.metadata, "relationships", None) or []
    return [r if isinstance(r, dict) else r.to_dict() for r in rels]


def executable(project: str, function: Any) -> str:
    """The string runs and tasks carry in spec.function: python://{project}/{name}:{id}."""
    return f"{function.kind}://{project}/{function.name}:{function.id}"


def _jsonable(obj: Any) -> Any:
    return obj.to_dict() if hasattr(obj, "to_dict") else str(obj)


def emit(observed: dict[str, Any]) -> None:
    sys.stderr.flush()
    print(json.dumps(observed, default=_jsonable), flush=True)
