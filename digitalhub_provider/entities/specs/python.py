"""The python runtime's function spec."""

from __future__ import annotations

from digitalhub_provider.entities.specs.base import CodeSpec, PythonVersion


class PythonFunctionSpec(CodeSpec):
    python_version: PythonVersion
    init_function: str | None = None
    base_image: str | None = None
    requirements: list[str] | None = None
