"""Operators: one per runtime. Importing this package imports no store or data library."""

from digitalhub_provider.operators.python import PythonRuntimeOperator

__all__ = ["PythonRuntimeOperator"]
