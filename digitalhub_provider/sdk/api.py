"""The SDK's module-level functions, with the seed's names and keywords.

``import digitalhub_provider as dh`` exposes them: ``dh.new_function(...)``,
``dh.get_function("name", project=...)`` or ``dh.get_function(project=...,
entity_name=...)``, ``dh.list_runs(project)``, ...
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from digitalhub_provider.entities import Artifact, Dataitem, Entity, Function, Model, Run, Workflow
from digitalhub_provider.sdk import runs as _runs  # noqa: F401 - installs the run operations entities use
from digitalhub_provider.stores import crud
from digitalhub_provider.stores.crud import delete_project, get_or_create_project, get_project, new_project

DEFAULT_KINDS = {
    "function": "python",
    "workflow": "kfp",
    "dataitem": "dataitem",
    "artifact": "artifact",
    "model": "model",
}


def _new(cls: type[Entity]) -> Callable[..., Any]:
    def new(project: str, name: str, kind: str = DEFAULT_KINDS[cls.ENTITY_TYPE], **kwargs: Any) -> Any:
        return crud.new_entity(cls, project=project, name=name, kind=kind, **kwargs)

    new.__doc__ = f"Create a {cls.ENTITY_TYPE} (a new version if the name exists) and save it."
    return new


def _get(cls: type[Entity]) -> Callable[..., Any]:
    def get(identifier: str | None = None, project: str | None = None, **kwargs: Any) -> Any:
        return crud.get_entity(cls, identifier, project=project, **kwargs)

    get.__doc__ = f"A {cls.ENTITY_TYPE} by key, by name (latest version) or by entity_id."
    return get


def _list(cls: type[Entity]) -> Callable[..., Any]:
    def list_(project: str, **kwargs: Any) -> Any:
        return crud.list_entities(cls, project, **kwargs)

    list_.__doc__ = f"The latest version of each {cls.ENTITY_TYPE} (all_versions=True for every version)."
    return list_


def _delete(cls: type[Entity]) -> Callable[..., Any]:
    def delete(identifier: str | None = None, project: str | None = None, **kwargs: Any) -> Any:
        return crud.delete_entity(cls, identifier, project=project, **kwargs)

    delete.__doc__ = f"Delete a {cls.ENTITY_TYPE} version, or every version with delete_all_versions=True."
    return delete


def _import(cls: type[Entity]) -> Callable[..., Any]:
    def import_(file: str | Path) -> Any:
        return crud.import_entity(file, expected=cls)

    import_.__doc__ = f"Load a {cls.ENTITY_TYPE} from a YAML file written by export(), and save it."
    return import_


def _update(cls: type[Entity]) -> Callable[..., Any]:
    def update(entity: Entity | None = None, **kwargs: Any) -> Any:
        target = entity if entity is not None else kwargs.pop(cls.ENTITY_TYPE)
        return crud.update_entity(target)

    update.__doc__ = f"Save a changed {cls.ENTITY_TYPE}: a changed spec becomes a new version."
    return update


new_function = _new(Function)
get_function = _get(Function)
list_functions = _list(Function)
delete_function = _delete(Function)
import_function = _import(Function)
update_function = _update(Function)

new_workflow = _new(Workflow)
get_workflow = _get(Workflow)
list_workflows = _list(Workflow)
delete_workflow = _delete(Workflow)
import_workflow = _import(Workflow)
update_workflow = _update(Workflow)

new_dataitem = _new(Dataitem)
get_dataitem = _get(Dataitem)
list_dataitems = _list(Dataitem)
delete_dataitem = _delete(Dataitem)
import_dataitem = _import(Dataitem)
update_dataitem = _update(Dataitem)

new_artifact = _new(Artifact)
get_artifact = _get(Artifact)
list_artifacts = _list(Artifact)
delete_artifact = _delete(Artifact)
import_artifact = _import(Artifact)
update_artifact = _update(Artifact)

new_model = _new(Model)
get_model = _get(Model)
list_models = _list(Model)
delete_model = _delete(Model)
import_model = _import(Model)
update_model = _update(Model)

get_run = _get(Run)
list_runs = _list(Run)
delete_run = _delete(Run)


def log_dataitem(
    project: str, name: str, kind: str = "table", data: Any = None, source: Any = None, **kw: Any
) -> Dataitem:
    return crud.log_material(Dataitem, project, name, kind, data=data, source=source, **kw)


def log_artifact(
    project: str, name: str, kind: str = "artifact", source: Any = None, source_path: Any = None, **kw: Any
) -> Artifact:
    return crud.log_material(Artifact, project, name, kind, source=source or source_path, **kw)


def log_model(
    project: str, name: str, kind: str = "model", source: Any = None, source_path: Any = None, **kw: Any
) -> Model:
    return crud.log_material(Model, project, name, kind, source=source or source_path, **kw)


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("annotations", "Any", "Callable", "Path")] + [
    "delete_project",
    "get_or_create_project",
    "get_project",
    "new_project",
]
