"""PythonRuntimeOperator: a function of the python runtime as an Airflow task."""

from __future__ import annotations

import sys
from typing import Any

from digitalhub_provider.operators.base import RUN_TEMPLATE_FIELDS, DigitalHubRunOperator

PYTHON_SPEC_FIELDS = (
    "code_src", "code", "base64", "handler", "init_function", "python_version", "lang", "image", "base_image",
    "requirements",
)  # fmt: skip


class PythonRuntimeOperator(DigitalHubRunOperator):
    """Run a DigitalHub python function (``action="job"``, or ``"build"``) as an Airflow task.

    Name the function (``project`` + ``function``, or ``function_key``), or give its spec
    (``code_src`` / ``code`` / ``base64``, ``handler``, ...) and it is created when the task
    runs, with a new version only when the spec changed. A relative ``code_src`` is read
    from the DAG file's folder. The run's outputs and results come back through XCom.

    A function without requirements on the worker's Python runs inside this task's interpreter
    (``in_process``, unset: when it can; ``False``: always a subprocess; ``True``: required), with
    the same RunSpec, RunResult, run log, kill and timeout behaviour as in a subprocess.
    """

    template_fields = RUN_TEMPLATE_FIELDS
    template_fields_renderers = {"inputs": "json", "parameters": "json"}
    ui_color = "#d6e9f8"
    spec_fields = PYTHON_SPEC_FIELDS

    def __init__(
        self,
        *,
        code_src: str | None = None,
        code: str | None = None,
        base64: str | None = None,
        handler: str | None = None,
        init_function: str | None = None,
        python_version: str | None = None,
        lang: str | None = None,
        image: str | None = None,
        base_image: str | None = None,
        requirements: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.code_src = code_src
        self.code = code
        self.base64 = base64
        self.handler = handler
        self.init_function = init_function
        self.python_version = python_version
        self.lang = lang
        self.image = image
        self.base_image = base_image
        self.requirements = requirements

    def function_spec(self) -> dict[str, Any]:
        spec = super().function_spec()
        if self.has_source(spec):
            spec.setdefault("python_version", f"PYTHON3_{sys.version_info.minor}")
        if spec.get("code_src"):
            spec["code_src"] = self.from_dag_folder(spec["code_src"])
        return spec
