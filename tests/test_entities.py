"""Entities: keys, names, validated specs."""

from __future__ import annotations

import pytest

from digitalhub_provider.entities import Dataitem, Function, Run
from digitalhub_provider.entities.keys import build_key, parse_key
from digitalhub_provider.entities.specs import plain_run_spec, validate_spec
from digitalhub_provider.errors import EntityError


def test_versioned_and_run_keys_round_trip() -> None:
    fn = Function.build(project="demo", name="fn", kind="python", spec={"python_version": "PYTHON3_11", "code": "x"})
    assert fn.key == f"store://demo/function/python/fn:{fn.id}"
    key = parse_key(fn.key)
    assert (key.project, key.entity_type, key.kind, key.name, key.id) == ("demo", "function", "python", "fn", fn.id)
    run = Run.build(project="demo", name="run", kind="python+job:run", spec={"task": "t", "function": fn.key})
    assert run.key == f"store://demo/run/python+job:run/{run.id}"
    assert parse_key(run.key).id == run.id
    assert build_key("demo", "dataitem", "table", "d", None) == "store://demo/dataitem/table/d"
    assert parse_key("store://demo/dataitem/table/d").id is None


@pytest.mark.parametrize(
    "key, words",
    [
        ("demo/function/python/fn", "starts with 'store://'"),
        ("store://demo/function/python", "expected store://project/type/kind/name:id"),
        ("store://demo/pipeline/python/x", "unknown entity type 'pipeline'"),
        ("store://Demo_X/function/python/x", "invalid project name"),
        ("store://demo/function/python/a b", "invalid name"),
    ],
)
def test_malformed_keys_name_the_problem(key: str, words: str) -> None:
    with pytest.raises(EntityError, match=words.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        parse_key(key)


def test_python_spec_has_the_seed_fields_and_checks_them() -> None:
    spec = validate_spec(
        "function",
        "python",
        {
            "code_src": "main.py",
            "handler": "h",
            "init_function": "init",
            "python_version": "PYTHON3_13",
            "lang": "python",
            "image": "img",
            "base_image": "base",
            "requirements": ["numpy"],
        },
    )
    assert spec["python_version"] == "PYTHON3_13" and spec["requirements"] == ["numpy"]
    with pytest.raises(EntityError, match="field 'python_version': must be one of PYTHON3_9"):
        validate_spec("function", "python", {"python_version": "PYTHON2_7"})
    with pytest.raises(EntityError, match="field 'python_version': Field required"):
        validate_spec("function", "python", {"code": "x"})
    with pytest.raises(EntityError, match="only one of code_src, code, base64"):
        validate_spec("function", "python", {"python_version": "PYTHON3_11", "code": "a", "base64": "b"})
    with pytest.raises(EntityError, match="field 'colour': unknown field"):
        validate_spec("function", "python", {"python_version": "PYTHON3_11", "colour": "red"})
    with pytest.raises(EntityError, match="unknown function kind 'java'"):
        validate_spec("function", "java", {})


def test_other_kinds_validate() -> None:
    assert validate_spec("function", "mlrun", {"source": {"source": "git+https://h/o/r.git#main"}, "handler": "h"})
    assert validate_spec("workflow", "kfp", {"code": "x", "handler": "p"})["handler"] == "p"
    assert validate_spec("dataitem", "table", {"path": "s3://b/k", "schema": {"fields": []}})["schema"] == {
        "fields": []
    }
    with pytest.raises(EntityError, match="field 'path': Field required"):
        validate_spec("dataitem", "table", {})
    with pytest.raises(EntityError, match="field 'backoff_limit': Value error, must be zero or more"):
        validate_spec("task", "python+job", {"function": "f", "backoff_limit": -1})


RUN_KIND = "python+job:run"
BASE_RUN = {"task": "store://p/task/python+job/t1", "function": "store://p/function/python/f:1"}


@pytest.mark.parametrize(
    "spec",
    [
        {**BASE_RUN, "inputs": {"di": "store://p/dataitem/table/d:1"}, "parameters": {"i": 1, "s": "x"}},
        {**BASE_RUN, "parameters": {"n": [None, {"x": None}], "f": 1.5, "b": True}, "outputs": None, "values": None},
        {**BASE_RUN, "outputs": ["a"], "values": ["v"], "local_execution": True, "node_selector": {"k": "v"}},
        {**BASE_RUN, "outputs": {"a": "b"}, "parameters": {}, "secrets": ["s"]},
    ],
)
def test_plain_run_specs_skip_the_model_and_equal_its_output(spec: dict) -> None:
    """The run's spec is checked without building its pydantic model when it is plain JSON of the
    model's types: the result must be exactly what the model returns."""
    plain = plain_run_spec(spec)
    assert plain == validate_spec("run", RUN_KIND, spec)
    assert plain is not None and plain.get("parameters", {}) is not spec.get("parameters")  # the entity's own copy


@pytest.mark.parametrize(
    "change",
    [
        {"parameters": {"f": float("nan")}},  # the model dumps it as null
        {"parameters": {"t": (1, 2)}},  # ... as a list
        {"parameters": {3: "int key"}},  # ... rejects it
        {"parameters": "not a dict"},
        {"outputs": "a"},
        {"values": [1]},
        {"inputs": {"di": 1}},
        {"local_execution": "yes"},
        {"task": None},
    ],
)
def test_run_specs_the_model_must_convert_or_reject_are_not_plain(change: dict) -> None:
    spec = {**BASE_RUN, **change}
    assert plain_run_spec(spec) is None
    try:
        converted = validate_spec("run", RUN_KIND, spec)
    except EntityError:
        return  # rejected with the model's message
    assert converted != {k: v for k, v in spec.items() if v is not None}


def test_metadata_shape() -> None:
    di = Dataitem.build(
        project="demo",
        name="d",
        kind="table",
        spec={"path": "/x"},
        labels=["a"],
        description="desc",
        relationships=[{"type": "produced_by", "dest": "store://demo/run/python+job:run/abc"}],
    )
    d = di.to_dict()
    assert set(d) >= {"id", "name", "kind", "project", "key", "metadata", "spec", "status"}
    meta = d["metadata"]
    assert meta["version"] == di.id and meta["labels"] == ["a"] and meta["embedded"] is True
    assert meta["created"] and meta["updated"]
    assert meta["relationships"] == [{"type": "produced_by", "dest": "store://demo/run/python+job:run/abc"}]
    with pytest.raises(ValueError, match=r"relationship type 'likes': expected one of produced_by, consumes"):
        Dataitem.build(
            project="demo", name="d", kind="table", spec={"path": "/x"}, relationships=[{"type": "likes", "dest": "x"}]
        )


@pytest.mark.parametrize(
    "change, words",
    [
        ({"id": 7}, "field 'id': expected a string, got int"),
        ({"metadata": None}, "field 'metadata': expected an object, got NoneType"),
        ({"metadata": {"project": "demo"}}, "field 'metadata.name': expected a string"),
        ({"metadata": {"project": "demo", "name": "d", "labels": "a"}}, "field 'metadata.labels': expected a list"),
        ({"metadata": {"project": "demo", "name": "d", "relationships": [{"type": "x", "dest": "y"}]}},
         "relationship type 'x'"),
        ({"spec": ["path"]}, "field 'spec': expected an object, got list"),
        ({"status": {"get": 1}}, "field 'get' of status is reserved"),
    ],
)  # fmt: skip
def test_from_dict_names_what_is_malformed(change: dict, words: str) -> None:
    good = Dataitem.build(project="demo", name="d", kind="table", spec={"path": "/x"}).to_dict()
    assert Dataitem.from_dict(good).to_dict() == good  # a stored entity reads back as it was written
    with pytest.raises(ValueError, match=words):
        Dataitem.from_dict({**good, **change})


def test_extra_fields_are_kept_and_the_entity_owns_its_dicts() -> None:
    data = Dataitem.build(project="demo", name="d", kind="table", spec={"path": "/x"}).to_dict()
    data["metadata"]["source"] = "imported"
    data["status"]["rows"] = 3
    di = Dataitem.from_dict(data)
    assert di.metadata.get("source") == "imported" and di.status.get("rows") == 3
    out = di.to_dict()
    out["spec"]["path"] = "/elsewhere"
    out["status"]["rows"] = 4
    assert di.spec["path"] == "/x" and di.status.get("rows") == 3 and di.to_dict()["metadata"]["source"] == "imported"


def test_the_task_fields_are_the_task_spec_model_s() -> None:
    """One list of a task's arguments, in the model's order; the operators, function.run() and KFP steps
    take theirs from it."""
    from digitalhub_provider.entities.specs import JOB_TASK_FIELDS, POD_FIELDS, TASK_FIELDS
    from digitalhub_provider.entities.specs.runs import TaskSpec
    from digitalhub_provider.runtimes.kfp.dsl import TASK_ARGUMENTS

    assert tuple(f for f in TaskSpec.model_fields if f != "function") == TASK_FIELDS
    assert set(POD_FIELDS) < set(JOB_TASK_FIELDS) < set(TASK_FIELDS)
    assert TASK_ARGUMENTS is JOB_TASK_FIELDS
