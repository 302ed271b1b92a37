"""Canary: what ``digitalhub_provider/operators/airflow_internals.py`` relies on in Airflow (and Jinja) is
still there and still behaves so. A failure names what changed; the fix goes in that module (or drop the
shortcut it makes: the operators then render as plain Airflow does, only slower)."""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import Any

import pytest

from digitalhub_provider.operators import airflow_internals

INSTALLED = f"Airflow {version('apache-airflow')} (task SDK {version('apache-airflow-task-sdk')})"
CHECKED = f"Airflow {airflow_internals.AIRFLOW_VERSION} (task SDK {airflow_internals.TASK_SDK_VERSION})"


def changed(what: str) -> str:
    return (
        f"AIRFLOW INTERNALS CHANGED: {what}. digitalhub_provider/operators/airflow_internals.py relies on it "
        f"(checked against {CHECKED}; installed: {INSTALLED}); see that module's docstring."
    )


def _op(dag: Any = None, task_id: str = "", **kwargs: Any) -> Any:
    from digitalhub_provider.operators import PythonRuntimeOperator

    task_id = task_id or f"t{len(dag.task_dict) if dag else 0}"
    return PythonRuntimeOperator(
        task_id=task_id, project="demo", function="f", code="x", handler="h", dag=dag, **kwargs
    )


# -- 1. BaseOperator._should_render_native(dag) --------------------------------------------------------------
def test_should_render_native_is_still_there_and_takes_the_dag() -> None:
    from airflow.sdk import DAG, BaseOperator

    method = getattr(BaseOperator, "_should_render_native", None)
    assert callable(method), changed("airflow.sdk.BaseOperator has no callable _should_render_native any more")
    params = inspect.signature(method).parameters
    assert "dag" in params, changed(f"BaseOperator._should_render_native no longer takes a dag argument: {params}")
    for native in (False, True):
        dag = DAG(f"canary_native_{native}", schedule=None, render_template_as_native_obj=native)
        assert _op(dag)._should_render_native(dag) is native, changed(
            f"BaseOperator._should_render_native(dag) no longer follows the DAG's render_template_as_native_obj "
            f"(={native})"
        )
        assert _op(dag, render_template_as_native_obj=not native)._should_render_native(dag) is (not native), changed(
            "BaseOperator._should_render_native(dag) no longer follows the task's render_template_as_native_obj"
        )
    assert _op()._should_render_native(None) is False, changed("_should_render_native(None) is no longer False")


def test_airflow_rendering_still_asks_should_render_native() -> None:
    """The shortcut asks ``_should_render_native`` whether a string could render to something else; Airflow's
    own rendering must decide by the same method (here overridden, on a plain DAG and on a native one)."""
    from airflow.sdk import DAG, BaseOperator

    for dag_native, task_native in ((False, True), (True, False)):
        dag = DAG(f"canary_asks_{dag_native}", schedule=None, render_template_as_native_obj=dag_native)
        op = _op(dag)
        asked: list[Any] = []

        def should_render_native(dag: Any = None, _asked: list[Any] = asked, _native: bool = task_native) -> bool:
            _asked.append(dag)
            return _native

        op._should_render_native = should_render_native  # type: ignore[method-assign]
        rendered = BaseOperator.render_template(op, "{{ 1 }}", {}, dag.get_template_env())
        assert asked and asked[-1] is dag, changed(
            "Airflow's render_template no longer calls the task's _should_render_native(dag) (AbstractOperator._render)"
        )
        assert rendered == (1 if task_native else "1"), changed(
            f"Airflow's rendering no longer follows _should_render_native: {rendered!r} with native={task_native}"
        )


# -- 2. native rendering uses a jinja2 NativeEnvironment -------------------------------------------------------
def test_native_rendering_still_uses_a_jinja_native_environment() -> None:
    from airflow.sdk import DAG
    from jinja2.nativetypes import NativeEnvironment

    native = DAG("canary_env_native", schedule=None, render_template_as_native_obj=True)
    plain = DAG("canary_env_plain", schedule=None)
    assert isinstance(native.get_template_env(), NativeEnvironment), changed(
        "a DAG with render_template_as_native_obj=True no longer gives a jinja2.nativetypes.NativeEnvironment"
    )
    assert not isinstance(plain.get_template_env(), NativeEnvironment), changed(
        "a plain DAG's template environment is now a jinja2 NativeEnvironment"
    )
    from airflow.sdk.definitions._internal import templater

    assert issubclass(templater.NativeEnvironment, NativeEnvironment), changed(
        "Airflow's NativeEnvironment no longer subclasses jinja2.nativetypes.NativeEnvironment"
    )


# -- 3. Jinja's tags -------------------------------------------------------------------------------------------
def test_jinja_still_has_only_the_tags_the_shortcut_looks_for() -> None:
    import jinja2
    from airflow.sdk import DAG

    looked_for = {"block_start_string", "variable_start_string", "comment_start_string", "line_statement_prefix",
                  "line_comment_prefix"}  # fmt: skip
    starts = {p for p in inspect.signature(jinja2.Environment).parameters if p.endswith(("_start_string", "_prefix"))}
    assert starts == looked_for, changed(f"jinja2.Environment's tag options are now {sorted(starts)}")
    env = DAG("canary_tags", schedule=None).get_template_env()
    for name in looked_for:
        value = getattr(env, name, KeyError)
        assert value is None or isinstance(value, str), changed(f"the Jinja environment's {name} is {value!r}")


# -- 4. template_ext names a template file ----------------------------------------------------------------------
def test_a_string_ending_in_template_ext_is_still_a_template_file() -> None:
    import jinja2
    from airflow.sdk import BaseOperator
    from airflow.sdk.definitions._internal.templater import SandboxedEnvironment

    from digitalhub_provider.operators import PythonRuntimeOperator

    class WithFiles(PythonRuntimeOperator):
        template_ext = (".txt",)

    op = WithFiles(task_id="t", project="demo", function="f", code="x", handler="h")
    env = SandboxedEnvironment(loader=jinja2.DictLoader({"query.txt": "from the file"}))
    assert BaseOperator.render_template(op, "query.txt", {}, env) == "from the file", changed(
        "Airflow's render_template no longer reads a string ending in template_ext as a template file"
    )
    assert op.render_template("query.txt", {}, env) == "from the file"
    assert airflow_internals.renders_to_itself(op, "query.txt", env) is False


# -- 5. the rendered fields stored are the task instance's template_fields ---------------------------------------
def test_rendered_fields_are_still_those_of_the_task_instance() -> None:
    from airflow.sdk.execution_time import task_runner

    serialize = getattr(task_runner, "_serialize_rendered_fields", None)
    assert callable(serialize), changed("airflow.sdk.execution_time.task_runner._serialize_rendered_fields is gone")
    op = _op(parameters={"who": "Ada"})
    assert op.template_fields == ("project", "function", "parameters")
    stored = serialize(op)
    assert set(stored) == set(op.template_fields), changed(
        f"_serialize_rendered_fields(task) no longer stores exactly the task's template_fields: {sorted(stored)}"
    )
    source = inspect.getsource(task_runner._prepare)
    assert "_serialize_rendered_fields(ti.task)" in source, changed(
        "task_runner._prepare no longer stores the rendered fields of ti.task"
    )
    assert source.index("render_templates(") < source.index("_serialize_rendered_fields(ti.task)"), changed(
        "task_runner._prepare no longer stores the rendered fields after rendering (ti.task is then the unmapped task)"
    )
    renders = inspect.getsource(task_runner.RuntimeTaskInstance.render_templates)
    assert "self.task.render_template_fields(" in renders, changed(
        "RuntimeTaskInstance.render_templates no longer renders through self.task.render_template_fields"
    )


def test_mapped_tasks_still_take_the_class_template_fields() -> None:
    from airflow.sdk import DAG

    from digitalhub_provider.operators import PythonRuntimeOperator
    from digitalhub_provider.operators.base import RUN_TEMPLATE_FIELDS

    with DAG("canary_mapped", schedule=None):
        mapped = PythonRuntimeOperator.partial(task_id="m", project="demo", function="f", code="x", handler="h").expand(
            parameters=[{"who": "Ada"}, {"who": "Bob"}]
        )
    assert tuple(mapped.template_fields) == RUN_TEMPLATE_FIELDS, changed(
        f"a MappedOperator's template_fields are no longer its operator class's: {mapped.template_fields}"
    )
    unmapped = mapped.unmap({"parameters": {"who": "Ada"}})
    assert unmapped.template_fields == ("project", "function", "parameters"), changed(
        f"MappedOperator.unmap no longer builds the task through __init__: {unmapped.template_fields}"
    )


# -- 6. BaseOperator.__setattr__ makes XComArg dependencies for the names in template_fields ---------------------
def test_setattr_still_makes_xcomarg_dependencies_from_template_fields() -> None:
    from airflow.sdk import DAG, BaseOperator

    source = inspect.getsource(BaseOperator.__setattr__)
    assert "key in self.template_fields" in source and "_set_xcomargs_dependency" in source, changed(
        "BaseOperator.__setattr__ no longer makes XComArg dependencies for the names in self.template_fields"
    )
    with DAG("canary_xcomarg", schedule=None) as dag:
        up = _op(dag, task_id="up")
        op = _op(dag, task_id="down")
    assert "inputs" not in op.template_fields
    op.inputs = {"di": up.output["data"]}
    assert "inputs" in op.template_fields and op.upstream_task_ids == {"up"}, changed(
        "setting an XComArg on a field that joins template_fields no longer makes the upstream dependency"
    )


@pytest.mark.parametrize("native", [False, True])
def test_the_shortcut_matches_airflow_on_plain_strings(native: bool) -> None:
    """End to end over the pieces above: whatever ``renders_to_itself`` says, Airflow renders the same."""
    from airflow.sdk import DAG, BaseOperator

    dag = DAG(f"canary_same_{native}", schedule=None, render_template_as_native_obj=native)
    op = _op(dag)
    env = dag.get_template_env()
    for text in ["plain", "1", "[1, 2]", "True", "a}} b", "50% {x}", "# not a comment", "a\nb", "{{ 2 }}"]:
        ours = op.render_template(text, {}, env)
        airflows = BaseOperator.render_template(op, text, {}, env)
        assert (ours, type(ours)) == (airflows, type(airflows)), changed(
            f"the rendering shortcut now differs from Airflow's on {text!r} (native={native}): {ours!r} != {airflows!r}"
        )
