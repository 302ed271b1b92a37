"""The Airflow internals the operators rely on, in one place.

Written against Airflow 3.3.2 (apache-airflow-task-sdk 1.3.2) and Jinja2 3.1. The canary,
``tests/test_airflow_internals.py``, fails naming what changed when an upgrade removes or changes any of:

1. ``BaseOperator._should_render_native(dag)`` (private; defined on
   ``airflow.sdk.definitions._internal.templater.Templater``): whether a task renders templates to native
   types (the operator's ``render_template_as_native_obj``, else its DAG's). Airflow's own rendering
   (``Templater._render``, reached through ``AbstractOperator._render(..., dag=self.get_dag())``) asks it
   for every string, so asking it too gives the same answer.
2. Native rendering uses a ``jinja2.nativetypes.NativeEnvironment`` (Airflow's
   ``airflow.sdk.definitions._internal.templater.NativeEnvironment`` subclasses it): a DAG with
   ``render_template_as_native_obj=True`` gives one from ``get_template_env()``.
3. Jinja's syntax: the only tags are the environment's ``block_start_string``, ``variable_start_string``,
   ``comment_start_string``, ``line_statement_prefix`` and ``line_comment_prefix`` (public Jinja API; the
   canary checks that ``jinja2.Environment`` takes no other start string or prefix).
4. ``Templater.render_template`` takes a string ending in one of the task's ``template_ext`` for the name
   of a template file.
5. Rendered fields: ``airflow.sdk.execution_time.task_runner._serialize_rendered_fields(ti.task)`` (private,
   called by ``_prepare`` and at finalisation) stores every name in the task *instance*'s
   ``template_fields``, at ~0.5 ms each (a pydantic ``TypeAdapter`` per field). For a mapped task ``ti.task``
   is the unmapped task (built by ``__init__``), while ``MappedOperator`` takes ``operator_class.template_fields``
   (the class's full list) to validate ``expand`` and to render.
6. ``BaseOperator.__setattr__`` makes an ``XComArg`` value an upstream dependency only when the name is in
   ``template_fields`` at that moment: a field joins the list before its value is set.

What the operators do with them (:mod:`digitalhub_provider.operators.base`): a templated field is one of a
task's ``template_fields`` only once it holds a value (:func:`template_fields_with`), and a string Jinja would
render to itself is returned without compiling it (:func:`renders_to_itself`). When any of the above is
missing, these fall back to Airflow's own behaviour (slower, never different).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

AIRFLOW_VERSION = "3.3.2"  # the version these were checked against (the canary names the installed one)
TASK_SDK_VERSION = "1.3.2"


def template_fields_with(task: Any, key: str, value: Any) -> tuple[str, ...] | None:
    """The task's ``template_fields`` once ``key`` holds ``value`` (relies on 5 and 6); ``None``: unchanged.

    A field is among them once it holds a value (not ``None``), in the class's order; the class keeps the
    full list (mapped tasks and the UI read it)."""
    every: Sequence[str] = type(task).template_fields
    if value is None or key not in every:
        return None
    mine = task.__dict__.get("template_fields", every)
    if key in mine:
        return None
    return tuple(f for f in every if f in mine or f == key)


def renders_to_itself(task: Any, text: str, env: Any) -> bool:
    """Whether Airflow would render ``text`` to itself, as a string (relies on 1 to 4): text without any
    of ``env``'s tags and without line breaks (Jinja normalises them and drops a trailing one), not a
    template file's name, rendered to a string (native rendering would turn ``"1"`` into ``1``)."""
    from jinja2.nativetypes import NativeEnvironment

    if env is None or "\n" in text or "\r" in text or text.endswith(tuple(task.template_ext)):
        return False
    dag = task.dag if task.has_dag() else None
    native = getattr(task, "_should_render_native", None)  # Airflow's; unknown means "maybe native"
    if isinstance(env, NativeEnvironment) or native is None or native(dag):
        return False
    tags = (env.block_start_string, env.variable_start_string, env.comment_start_string,
            env.line_statement_prefix, env.line_comment_prefix)  # fmt: skip
    return not any(tag and tag in text for tag in tags)
