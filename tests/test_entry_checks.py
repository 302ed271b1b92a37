"""Inputs are checked where they enter, before any I/O: names that would become paths outside the
data store, wrong types for inputs and identifiers. Each case ends in a message naming the problem,
no run stored and nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import digitalhub_provider as dh
from digitalhub_provider.errors import EntityError
from digitalhub_provider.sdk.context import get_context

PY = {"kind": "python", "python_version": "PYTHON3_11"}
CODE = "import pandas as pd\n\ndef table():\n    return pd.DataFrame({'a': [1]})\n"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (["../../../../C/escaped"], "invalid output name '../../../../C/escaped'"),
        (["a/b"], "invalid output name 'a/b'"),
        ({"output": "../up"}, "invalid name for output 'output' '../up'"),
        ({"../x": "fine"}, "invalid output name '../x'"),
        ([""], "invalid output name ''"),
        (["t", "t"], "outputs has duplicate names"),
        ("table", "outputs must be a list of names or a dictionary of renames, got str"),
    ],
)
def test_output_names_are_checked_before_anything_runs(
    outputs: Any, message: str, dh_home: Path, tmp_path: Path
) -> None:
    fn = dh.new_function(project="demo", name="table", code=CODE, handler="table", **PY)
    before = _files(tmp_path)
    with pytest.raises(EntityError, match=f"^{_escape(message)}"):
        fn.run(action="job", outputs=outputs)
    assert dh.list_runs("demo") == []
    created = _files(tmp_path) - before
    # The new function's metadata database may change; no folder or file of a run, inside or outside the data store.
    assert not [p for p in created if "metadata.db" not in p.name], created


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_inputs_given_as_a_list_get_a_message() -> None:
    fn = dh.new_function(project="demo", name="table", code=CODE, handler="table", **PY)
    with pytest.raises(EntityError, match=r"^inputs must be a dictionary of input name to entity key, got list"):
        fn.run(action="job", inputs=["store://demo/dataitem/table/x"])
    assert dh.list_runs("demo") == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dh.get_run(42, project="demo"), "get run: identifier must be a string (a key store://..., a name"),
        (lambda: dh.get_run(None, project="demo"), "get run: give a key (store://...), a name (entity_name=) or"),
        (lambda: dh.get_function(entity_id=3.5, project="demo"), "get function: entity_id must be a string"),
        (lambda: dh.get_dataitem(["a"], project="demo"), "get dataitem: identifier must be a string"),
    ],
)  # fmt: skip
def test_wrong_identifier_types_get_a_message(call: Any, message: str) -> None:
    dh.get_or_create_project("demo")
    with pytest.raises(EntityError) as raised:
        call()
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (("demo", "dataitem", "../x", "abc", "data.parquet"), "invalid dataitem name '../x'"),
        (("demo", "dataitem", "x", "../../abc", "data.parquet"), "invalid entity id '../../abc'"),
        (("../demo", "dataitem", "x", "abc", "data.parquet"), "invalid project name '../demo'"),
        (("demo", "secrets", "x", "abc", "data.parquet"), "unknown entity type 'secrets'"),
        (("demo", "artifact", "x", "abc", "../../../etc/passwd"), "path part '../../../etc/passwd' would leave"),
        (("demo", "artifact", "x", "abc", "a/\x00b"), "path part 'a/\\x00b' would leave"),
    ],
)
def test_the_one_place_names_become_paths_refuses_escapes(parts: tuple[str, ...], message: str) -> None:
    with pytest.raises(EntityError) as raised:
        get_context().material_url(*parts)
    assert str(raised.value).startswith(message)


def test_run_files_need_a_run_id() -> None:
    with pytest.raises(EntityError, match=r"^invalid entity id '\.\./\.\./x'"):
        get_context().run_url("../../x", "result.json")
    assert get_context().run_url("abc123", "result.json").endswith("/runs/abc123/result.json")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"resources": {"cpu": "lots"}}, "invalid resource quantity 'lots' for cpu requests"),
        ({"resources": {"disk": "1Gi"}}, "unknown resource 'disk': use cpu, mem or gpu"),
        ({"envs": [{"value": "x"}]}, "invalid environment variable {'value': 'x'}"),
        ({"secrets": ["Not_A_Secret"]}, "invalid secret name 'Not_A_Secret'"),
        ({"volumes": [{"volume_type": "nfs", "name": "v", "mount_path": "/v"}]}, "volume 'v': volume_type must be"),
        ({"node_selector": [{"k": "v"}]}, "node_selector: give a dictionary or a list of {key, value}"),
    ],
)
def test_task_arguments_are_checked_on_local_runs_as_on_kubernetes(arguments: dict[str, Any], message: str) -> None:
    fn = dh.new_function(project="demo", name="table", code=CODE, handler="table", **PY)
    with pytest.raises(EntityError) as raised:
        fn.run(action="job", **arguments)
    assert str(raised.value).startswith(message)
    assert dh.list_runs("demo") == [] and get_context().metadata.list("demo", "task") == []


def test_the_sdk_refuses_a_pod_it_cannot_start() -> None:
    fn = dh.new_function(project="demo", name="table", code=CODE, handler="table", **PY)
    with pytest.raises(EntityError, match=r"^local_execution=False asks for the run in a Kubernetes pod"):
        fn.run(action="job", local_execution=False)
    assert dh.list_runs("demo") == []
    run = fn.run(action="job", local_execution=True)
    assert run.state == "COMPLETED" and run.spec.get("local_execution") is True


def _datetime() -> Any:
    import datetime

    return datetime.datetime(2026, 1, 2, 3, 4)


def _numpy_int() -> Any:
    import numpy as np

    return np.int64(3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (lambda: float("nan"), "parameter 'x' is nan: JSON has no NaN or infinity"),
        (lambda: [1, float("inf")], "parameter 'x'[1] is inf: JSON has no NaN or infinity"),
        (lambda: {1, 2}, "parameter 'x' is a set ({1, 2}), which JSON cannot hold: pass a sorted list"),
        (_datetime, "parameter 'x' is a datetime (datetime.datetime(2026, 1, 2, 3, 4)), which JSON cannot hold"),
        (lambda: {"when": b"\x00"}, "parameter 'x'['when'] is a bytes (b'\\x00'), which JSON cannot hold: pass a str"),
        (lambda: {3: "a"}, "parameter 'x' has the key 3: JSON object keys are strings"),
        (_numpy_int, "parameter 'x' is a int64 (np.int64(3)), which JSON cannot hold: pass value.item()"),
    ],
)
def test_parameters_that_are_not_json_values_are_refused_by_name(value: Any, message: str) -> None:
    fn = dh.new_function(project="demo", name="table", code=CODE, handler="table", **PY)
    with pytest.raises(EntityError) as raised:
        fn.run(action="job", parameters={"x": value()})
    assert str(raised.value).startswith(message)
    assert dh.list_runs("demo") == []


def test_a_dataframe_round_trips_as_pandas_writes_it() -> None:
    """Integer column labels stay integers, a named index comes back, as with DataFrame.to_parquet."""
    import pandas as pd

    df = pd.DataFrame({0: [1, 2], 1: ["a", "b"]})
    pd.testing.assert_frame_equal(dh.log_dataitem(project="demo", name="ints", kind="table", data=df).as_df(), df)
    indexed = pd.DataFrame({"v": [1.5, 2.5]}, index=pd.Index(["x", "y"], name="k"))
    back = dh.log_dataitem(project="demo", name="idx", kind="table", data=indexed).as_df()
    pd.testing.assert_frame_equal(back, indexed)


def test_a_requirement_that_does_not_exist_leaves_no_half_built_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    envs = tmp_path / "envs"
    monkeypatch.setenv("DIGITALHUB_ENVS_DIR", str(envs))
    from digitalhub_provider.sdk.context import reset_context

    reset_context()
    fn = dh.new_function(
        project="demo",
        name="needs",
        code=CODE,
        handler="table",
        requirements=["digitalhub-no-such-package-4711==0.0.1"],
        **PY,
    )
    run = fn.run(action="job")
    assert run.state == "ERROR"
    assert run.status.message.startswith("cannot install the requirements ['digitalhub-no-such-package-4711==0.0.1']")
    assert [p.name for p in envs.iterdir() if not p.name.endswith(".lock")] == []
