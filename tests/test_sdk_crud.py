"""The SDK with the seed's names: versions, get, list, delete, cascade, import/export."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import digitalhub_provider as dh
from digitalhub_provider.errors import EntityError, EntityNotFoundError
from digitalhub_provider.sdk.context import get_context

PY = {"kind": "python", "handler": "h", "python_version": "PYTHON3_11"}


def test_new_get_update_versions() -> None:
    dh.get_or_create_project("demo")
    f1 = dh.new_function(project="demo", name="fn", code="def h(): return 1", **PY)
    assert dh.get_function("fn", project="demo").id == f1.id  # current SDK: positional name
    assert dh.get_function(project="demo", entity_name="fn").id == f1.id  # the seed's keywords
    assert dh.get_function(project="demo", entity_id=f1.id).key == f1.key
    assert dh.get_function(f1.key).id == f1.id

    f1.metadata.description = "only metadata"
    same = dh.update_function(f1)
    v1 = f1.id
    assert same.id == v1 and dh.get_function("fn", project="demo").metadata.description == "only metadata"

    f1.spec["code"] = "def h(): return 2"
    f2 = dh.update_function(function=f1)
    assert f2.id != v1 and f2.name == "fn"
    assert dh.get_function("fn", project="demo").id == f2.id  # latest by name
    assert dh.get_function(project="demo", entity_id=v1).spec["code"] == "def h(): return 1"
    assert [f.id for f in dh.list_functions("demo")] == [f2.id]
    assert {f.id for f in dh.list_functions("demo", all_versions=True)} == {v1, f2.id}

    f3 = dh.new_function(project="demo", name="fn", code="def h(): return 3", **PY)
    assert dh.get_function("fn", project="demo").id == f3.id


def test_save_and_project_methods() -> None:
    project = dh.get_or_create_project("demo")
    fn = project.new_function(name="p-fn", code="x=1", **PY)
    assert project.get_function("p-fn").id == fn.id
    assert [f.name for f in project.list_functions()] == ["p-fn"]
    first = fn.id
    fn.spec["code"] = "x=2"
    saved = fn.save(update=True)
    assert saved.id != first and project.get_function("p-fn").id == saved.id
    assert project.get_function(entity_id=first).spec["code"] == "x=1"
    assert len(project.list_functions(all_versions=True)) == 2


def test_delete_version_all_versions_and_cascade() -> None:
    dh.get_or_create_project("demo")
    a = dh.new_function(project="demo", name="fn", code="def h(): return 1", **PY)
    b = dh.new_function(project="demo", name="fn", code="def h(): return 2", **PY)
    run = b.run(action="job", local_execution=True)
    assert run.state == "COMPLETED"
    ctx = get_context()
    assert len(ctx.metadata.list("demo", "run")) == 1 and len(ctx.metadata.list("demo", "task")) == 1

    assert dh.delete_function(project="demo", entity_id=a.id) == 1
    assert dh.get_function("fn", project="demo").id == b.id
    with pytest.raises(EntityNotFoundError):
        dh.get_function(project="demo", entity_id=a.id)

    with pytest.raises(EntityError, match="exclude each other"):
        dh.delete_function(project="demo", entity_id=b.id, delete_all_versions=True)

    dh.new_function(project="demo", name="fn", code="def h(): return 3", **PY)
    assert dh.delete_function(project="demo", entity_name="fn", delete_all_versions=True, cascade=True) == 2
    assert dh.list_functions("demo") == []
    assert ctx.metadata.list("demo", "run") == [] and ctx.metadata.list("demo", "task") == []


def test_a_function_with_runs_is_deleted_only_with_cascade_and_takes_their_files(dh_home: Path) -> None:
    fn = dh.new_function(project="demo", name="fn", code="def h(): return 1", **PY)
    run = fn.run(action="job")
    run_folder = dh_home / "data" / "runs" / run.id
    assert (run_folder / "result.json").exists()
    with pytest.raises(EntityError, match=r"^function 'fn' \(1 version\(s\)\) has 1 run\(s\) and 1 task\(s\): delete"):
        dh.delete_function(project="demo", entity_name="fn", delete_all_versions=True)
    assert len(dh.list_runs("demo")) == 1 and dh.get_function("fn", project="demo").id == fn.id
    assert dh.delete_function(project="demo", entity_name="fn", delete_all_versions=True, cascade=True) == 1
    assert dh.list_runs("demo") == [] and not run_folder.exists()


def test_deleting_materials_runs_and_projects_removes_their_files(dh_home: Path, tmp_path: Path) -> None:
    import pandas as pd

    data = dh_home / "data"
    kept = dh.log_dataitem(project="demo", name="t", kind="table", data=pd.DataFrame({"a": [1]}))
    gone = dh.log_dataitem(project="demo", name="t", kind="table", data=pd.DataFrame({"a": [2]}))
    source = tmp_path / "notes.txt"
    source.write_text("mine")
    art = dh.log_artifact(project="demo", name="notes", kind="artifact", source=str(source))
    assert (data / "demo" / "dataitem" / "t" / gone.id).is_dir()
    dh.delete_dataitem(project="demo", entity_id=gone.id)
    assert not (data / "demo" / "dataitem" / "t" / gone.id).exists()
    assert (data / "demo" / "dataitem" / "t" / kept.id).is_dir()  # the other version keeps its files
    dh.delete_artifact(art.key)
    assert not list((data / "demo" / "artifact").rglob("notes.txt")) and source.exists()  # the user's file stays
    run = dh.new_function(project="demo", name="fn", code="def h(): return 1", **PY).run(action="job")
    dh.delete_run(run.key)
    assert not (data / "runs" / run.id).exists()
    other = dh.new_function(project="demo", name="fn2", code="def h(): return 2", **PY).run(action="job")
    dh.delete_project("demo")
    assert not (data / "demo").exists() and not (data / "runs" / other.id).exists()


def test_export_then_import_gives_the_same_entity(tmp_path: Path) -> None:
    fn = dh.new_function(project="demo", name="fn", code="def h(): return 1", labels=["x"], description="d", **PY)
    path = fn.export(filename=tmp_path / "fn.yaml")
    dh.delete_function(project="demo", entity_id=fn.id)
    back = dh.import_function(file=path)
    assert back.to_dict() == fn.to_dict()
    assert dh.get_function(fn.key).to_dict() == fn.to_dict()


def test_import_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed")
    with pytest.raises(EntityError, match="unreadable YAML"):
        dh.import_function(file=bad)
    with pytest.raises(EntityError, match="no such file"):
        dh.import_function(file=tmp_path / "missing.yaml")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("a: 1\n")
    with pytest.raises(EntityError, match="expected an entity with kind, metadata and spec"):
        dh.import_function(file=wrong)
    fn = dh.new_function(project="demo", name="f", kind="python", code="def h():\n    return 1\n", handler="h",
                         python_version="PYTHON3_11")  # fmt: skip
    malformed = fn.to_dict()
    dh.delete_function(fn.key)
    malformed["metadata"]["labels"] = "not-a-list"
    (tmp_path / "malformed.yaml").write_text(yaml.safe_dump(malformed))
    with pytest.raises(EntityError, match=r"cannot import .*field 'metadata\.labels': expected a list of strings"):
        dh.import_function(file=tmp_path / "malformed.yaml")
    di = dh.new_dataitem(project="demo", name="d", kind="table", path="/tmp/x.parquet")
    with pytest.raises(EntityError, match="holds a dataitem, not a function"):
        dh.import_function(file=di.export(tmp_path / "di.yaml"))
    assert dh.list_functions("demo") == []


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"name": "fn", "kind": "cobol"}, "unknown function kind 'cobol'"),
        ({"name": "fn", "kind": "python", "python_version": "PYTHON3_14"}, "field 'python_version'"),
        ({"name": "fn", "kind": "python", "python_version": "PYTHON3_11", "code": "a", "code_src": "b"}, "only one of"),
        ({"name": "fn", "kind": "python"}, "field 'python_version': Field required"),
        ({"name": "bad name!", "kind": "python", "python_version": "PYTHON3_11"}, "invalid name 'bad name!'"),
    ],
)
def test_bad_specs_write_nothing(kwargs: dict, words: str) -> None:
    dh.get_or_create_project("demo")
    with pytest.raises(EntityError, match=words.replace("(", r"\(")):
        dh.new_function(project="demo", **kwargs)
    assert dh.list_functions("demo", all_versions=True) == []


def test_bad_project_and_missing_entities() -> None:
    with pytest.raises(EntityError, match="invalid project name 'My Project'"):
        dh.new_function(project="My Project", name="fn", **PY)
    with pytest.raises(EntityNotFoundError, match="function 'ghost' not found in project 'demo'"):
        dh.get_function("ghost", project="demo")
    with pytest.raises(EntityNotFoundError):
        dh.get_project("nope")
    with pytest.raises(EntityError, match="is the key of a dataitem, not of a function"):
        dh.get_function("store://demo/dataitem/table/x")
    with pytest.raises(EntityError, match="a project is needed"):
        dh.get_function("fn")


def test_other_entity_families() -> None:
    wf = dh.new_workflow(project="demo", name="wf", kind="kfp", code="x", handler="p")
    assert dh.get_workflow("wf", project="demo").id == wf.id
    dh.new_model(project="demo", name="m", kind="model", path="/tmp/m.bin", framework="sklearn")
    assert dh.list_models("demo")[0].spec["framework"] == "sklearn"
    art = dh.new_artifact(project="demo", name="a", kind="artifact", path="/tmp/a.txt")
    assert dh.delete_artifact(art.key) == 1
    assert dh.delete_model(project="demo", entity_name="m") == 1
    assert dh.delete_workflow(project="demo", entity_name="wf", delete_all_versions=True) == 1


def test_list_with_an_unknown_filter_names_the_known_ones() -> None:
    dh.get_or_create_project("demo")
    with pytest.raises(EntityError, match=r"unknown filter\(s\) 'function' for list_runs: use name, kind, state, "
                                          r"function_name"):  # fmt: skip
        dh.list_runs("demo", function="f")
    assert dh.list_runs("demo", function_name="f") == []
