"""Operators: one per runtime. Importing this package imports no store or data library."""

from __future__ import annotations

from typing import Any

from digitalhub_provider.operators.python import PythonRuntimeOperator

_LAZY = {
    "KfpPipelineOperator": "digitalhub_provider.operators.kfp",
    "MlrunJobOperator": "digitalhub_provider.operators.mlrun",
    "SubmittedRunOperator": "digitalhub_provider.operators.submitted",
    "DigitalHubStopRunOperator": "digitalhub_provider.operators.stop",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'digitalhub_provider.operators' has no attribute {name!r}")


__all__ = [
    "DigitalHubStopRunOperator",
    "KfpPipelineOperator",
    "MlrunJobOperator",
    "PythonRuntimeOperator",
    "SubmittedRunOperator",
]
