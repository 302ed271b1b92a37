"""MlrunJobOperator: a function of the mlrun runtime as an Airflow task.

Importing this module imports neither mlrun nor any data library: mlrun lives only in
its own environment (Python 3.11 + mlrun), where the runner runs.
"""

from __future__ import annotations

from typing import Any

from digitalhub_provider.operators.base import RUN_TEMPLATE_FIELDS, DigitalHubRunOperator

MLRUN_SPEC_FIELDS = ("source", "handler", "image", "tag", "requirements")


class MlrunJobOperator(DigitalHubRunOperator):
    """Run a DigitalHub mlrun function (``action="job"``, or ``"build"``) as an Airflow task.

    Name the function (``project`` + ``function``, or ``function_key``), or give its spec
    (``source={"source": "src/pipeline.py"}`` or ``{"code": ...}`` / ``{"base64": ...}``,
    ``handler``, ...) and it is created when the task runs, with a new version only when the
    spec changed. A relative local ``source["source"]`` is read from the DAG file's folder.
    MLRun runs it locally in the mlrun environment; its artifacts come back as outputs
    (``outputs`` renames them: ``{"mlrun name": "our name"}``) and the MLRun results named
    in ``values`` as results, all through XCom. When the connection names an MLRun API server
    (extra ``mlrun_api``, token in ``mlrun_token``), the run, its project and its artifacts are
    then registered there too (the result ``mlrun_api`` is the server's URL); a failed
    registration fails the task and leaves nothing behind.
    """

    template_fields = RUN_TEMPLATE_FIELDS
    template_fields_renderers = {"inputs": "json", "parameters": "json"}
    ui_color = "#fde2c8"
    function_kind = "mlrun"
    spec_fields = MLRUN_SPEC_FIELDS
    source_hint = "source={'source' | 'code' | 'base64': ...}"

    def __init__(
        self,
        *,
        source: dict[str, Any] | None = None,
        handler: str | None = None,
        image: str | None = None,
        tag: str | None = None,
        requirements: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.handler = handler
        self.image = image
        self.tag = tag
        self.requirements = requirements

    def has_source(self, spec: dict[str, Any]) -> bool:
        source = spec.get("source")
        return isinstance(source, dict) and bool(source.get("source") or source.get("code") or source.get("base64"))

    def function_spec(self) -> dict[str, Any]:
        spec = super().function_spec()
        source = spec.get("source")
        if isinstance(source, dict) and isinstance(source.get("source"), str) and source["source"]:
            spec["source"] = {**source, "source": self.from_dag_folder(source["source"])}
        return spec
