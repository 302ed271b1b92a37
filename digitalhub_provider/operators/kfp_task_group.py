"""A kfp-runtime pipeline rendered natively: an Airflow TaskGroup with one task per step.

The same ``pipeline_context`` DSL the kfp runtime compiles to KFP IR is recorded
at DAG-parse time (no kfp import, no store access: the handler only declares
steps) and each step becomes a :class:`PythonRuntimeOperator` that runs the
step's platform function. An output that flows between two steps becomes an
XCom reference (``upstream.output["dataset"]``), which is also the tasks'
dependency, so each step shows in the grid with its own retries, logs and run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitalhub_provider.operators.python import PythonRuntimeOperator
from digitalhub_provider.runtimes.kfp.dsl import ArgRef, OutputRef, PipelineError, PipelineGraph, record_pipeline

if TYPE_CHECKING:
    from airflow.sdk import TaskGroup

    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.sdk.context import Context


class PipelineStepOperator(PythonRuntimeOperator):
    """One step of a rendered pipeline: run an existing function (latest version, or ``function_id``)."""

    def __init__(self, *, function_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.function_id = function_id

    def resolve_function(self, ctx: Context) -> Executable:
        from digitalhub_provider.entities import Function
        from digitalhub_provider.entities.keys import is_key
        from digitalhub_provider.errors import EntityNotFoundError
        from digitalhub_provider.stores import crud

        name = self.function or self.task_id
        if self.function_key or not self.function_id or is_key(name):
            return super().resolve_function(ctx)
        try:
            return crud.get_entity(Function, name, project=self.project, entity_id=self.function_id, ctx=ctx)
        except EntityNotFoundError:
            raise EntityNotFoundError(
                f"function {name!r} version {self.function_id} does not exist in project {self.project!r}"
            ) from None


def load_pipeline(code_src: str | None, handler: str, base: str | None = None) -> Callable[..., Any]:
    """The pipeline handler: ``handler`` in the file ``code_src`` (relative to ``base``), or ``module:function``."""
    module_name, _, func_name = handler.rpartition(":")
    if code_src:
        path = Path(code_src)
        if not path.is_absolute() and base:
            path = Path(base) / path
        if not path.is_file():
            raise PipelineError(f"pipeline source {str(path)!r}: no such file")
        key = f"dh_pipeline_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
        spec = importlib.util.spec_from_file_location(key, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    elif module_name:
        module = importlib.import_module(module_name)
    else:
        raise PipelineError(f"give code_src (a file) or handler='module:function' (got handler {handler!r})")
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise PipelineError(f"pipeline handler {func_name!r} not found in {code_src or module_name}")
    return fn


def _caller_folder() -> str | None:
    frame = sys._getframe(2)
    filename = frame.f_globals.get("__file__")
    return os.path.dirname(os.path.abspath(filename)) if filename else None


def pipeline_task_group(
    group_id: str,
    *,
    project: str,
    pipeline: Callable[..., Any] | None = None,
    code_src: str | None = None,
    handler: str | None = None,
    inputs: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    labels: list[str] | None = None,
    digitalhub_conn_id: str = "digitalhub_default",
    tooltip: str | None = None,
    step_kwargs: dict[str, Any] | None = None,
) -> TaskGroup:
    """Render a ``pipeline_context`` pipeline as a TaskGroup of :class:`PythonRuntimeOperator` tasks.

    The pipeline is ``pipeline`` (the handler itself), or ``handler`` in the file ``code_src``
    (relative to the calling DAG file), or ``handler="module:function"``. ``inputs`` and
    ``parameters`` give the handler's arguments (templates and XCom references welcome:
    ``inputs={"url": source.output["parkings-source"]}``). ``step_kwargs`` go to every step
    task (``retries``, ``pool``, ``local_execution``...); a step's own task arguments
    (``backoff_limit``, ``resources``...) come from the DSL. Call it inside a DAG.
    """
    from airflow.sdk import TaskGroup

    if pipeline is None:
        if not handler:
            raise PipelineError(f"pipeline_task_group({group_id!r}): give pipeline=, or code_src= and handler=")
        pipeline = load_pipeline(code_src, handler, _caller_folder())
    graph = record_pipeline(pipeline)
    arguments = bind_arguments(graph, inputs or {}, parameters or {})
    with TaskGroup(group_id, tooltip=tooltip or f"DigitalHub pipeline {graph.name!r}") as group:
        tasks: dict[str, PipelineStepOperator] = {}

        def resolve(value: Any) -> Any:
            if isinstance(value, ArgRef):
                return arguments[value.name]
            if isinstance(value, OutputRef):
                upstream: Any = tasks[value.step].output
                return upstream[value.output]
            return value

        for step in graph.order():
            task = PipelineStepOperator(
                task_id=step.name,
                project=project,
                function=step.function,
                function_id=step.function_id,
                action=step.action,
                inputs={k: resolve(v) for k, v in step.inputs.items()} or None,
                parameters={k: resolve(v) for k, v in step.parameters.items()} or None,
                outputs=dict(step.output_map) or None,
                values=list(step.values) or None,
                labels=[*(labels or []), f"kfp.pipeline={graph.name}", f"kfp.step={step.name}"],
                digitalhub_conn_id=digitalhub_conn_id,
                **{**step.task, **(step_kwargs or {})},
            )
            for dep in step.depends_on:
                tasks[dep] >> task
            tasks[step.name] = task
    return group


def bind_arguments(graph: PipelineGraph, inputs: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The handler's arguments from the group's inputs and parameters, or their defaults."""
    return graph.bind(inputs, parameters)
