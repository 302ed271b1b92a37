"""Create, read, update, delete, import and export of entities.

Versioning follows DigitalHub: a changed spec is saved as a new version (a new
id under the same name); reads by name give the latest version, reads by id
that version.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml

from digitalhub_provider.entities import ENTITY_CLASSES, Entity, Project
from digitalhub_provider.entities.base import new_id, now_iso
from digitalhub_provider.entities.keys import is_key, parse_key, validate_project_name
from digitalhub_provider.entities.specs import validate_spec
from digitalhub_provider.errors import EntityError, EntityExistsError, EntityNotFoundError
from digitalhub_provider.stores import deletion
from digitalhub_provider.stores.context import Context, get_context

E = TypeVar("E", bound=Entity)


def _ctx(ctx: Context | None) -> Context:
    return ctx or get_context()


def _wrap(cls: type[E], data: dict[str, Any], ctx: Context | None) -> E:
    return cls.from_dict(data, ctx)


# -- projects ---------------------------------------------------------------------------
def get_project(name: str, ctx: Context | None = None) -> Project:
    validate_project_name(name)
    c = _ctx(ctx)
    return _wrap(Project, c.metadata.get(name, "project", name), ctx)


def new_project(name: str, description: str | None = None, ctx: Context | None = None, **kwargs: Any) -> Project:
    c = _ctx(ctx)
    project = Project.build(project=name, name=name, kind="project", uuid=name, description=description, spec=kwargs)
    c.insert("project", project.to_dict())
    project._ctx = ctx
    return project


def get_or_create_project(name: str, ctx: Context | None = None, **kwargs: Any) -> Project:
    try:
        return get_project(name, ctx=ctx)
    except EntityNotFoundError:
        try:
            return new_project(name, ctx=ctx, **kwargs)
        except EntityExistsError:
            return get_project(name, ctx=ctx)  # another process created it first


def delete_project(name: str, cascade: bool = True, ctx: Context | None = None) -> int:
    """The project; with ``cascade`` (the default) everything in it, its files included."""
    c = _ctx(ctx)
    get_project(name, ctx=ctx)
    return deletion.delete_project(c, name) if cascade else c.metadata.delete(name, "project", ids=[name])


# -- create / update ---------------------------------------------------------------------
def new_entity(
    cls: type[E],
    project: str,
    name: str,
    kind: str,
    uuid: str | None = None,
    description: str | None = None,
    labels: list[str] | None = None,
    embedded: bool = True,
    relationships: list[dict[str, str]] | None = None,
    ctx: Context | None = None,
    **spec: Any,
) -> E:
    """Build, validate and save a new entity (a new version if the name exists)."""
    spec = {k: v for k, v in spec.items() if v is not None}
    entity = cls.build(
        project=project,
        name=name,
        kind=kind,
        spec=spec,
        uuid=uuid,
        description=description,
        labels=labels,
        embedded=embedded,
        relationships=relationships,
    )
    entity._ctx = ctx
    return create_entity(entity, ctx=ctx)


def create_entity(entity: E, ctx: Context | None = None) -> E:
    c = _ctx(ctx)
    if not c.records_only:
        get_or_create_project(entity.project, ctx=ctx)
        try:
            c.metadata.get(entity.project, entity.ENTITY_TYPE, entity.id)
        except EntityNotFoundError:
            pass
        else:
            return update_entity(entity, ctx=ctx)
    c.insert(entity.ENTITY_TYPE, entity.to_dict())
    return entity


def next_version(entity: E, **spec: Any) -> E:
    """A copy of ``entity`` as its next version, its spec changed by ``spec`` (validated, not saved):
    what a build records (the environment or image it made) for later runs of the function."""
    copy = type(entity).from_dict(entity.to_dict(), entity._ctx)
    copy.spec = validate_spec(entity.ENTITY_TYPE, entity.kind, {**entity.spec, **spec})
    copy.id = new_id()
    copy.metadata.version = copy.id
    copy.metadata.created = copy.metadata.updated = now_iso()
    return copy


def update_entity(entity: E, ctx: Context | None = None) -> E:
    """Save changes: metadata in place, a changed spec as a new version."""
    c = _ctx(ctx)
    clean = validate_spec(entity.ENTITY_TYPE, entity.kind, entity.spec)
    stored = c.metadata.get(entity.project, entity.ENTITY_TYPE, entity.id)
    entity.spec = clean
    entity.metadata.updated = now_iso()
    if entity.ENTITY_TYPE not in ("task", "run", "project") and stored.get("spec") != clean:
        entity.id = new_id()
        entity.metadata.version = entity.id
        entity.metadata.created = entity.metadata.updated
        c.insert(entity.ENTITY_TYPE, entity.to_dict())
    else:
        if entity.ENTITY_TYPE == "run":  # a run's status is the run controller's alone: the stored one stays
            entity.status = type(entity).from_dict(stored).status
        c.metadata.write(update=[(entity.ENTITY_TYPE, entity.to_dict())])
    return entity


def log_material(
    cls: type[E],
    project: str,
    name: str,
    kind: str,
    data: Any = None,
    source: str | Path | None = None,
    ctx: Context | None = None,
    **kwargs: Any,
) -> E:
    """Write data (a DataFrame, or a local file) to the data store and register it.

    If registering fails the written data is deleted again: nothing half-written.
    """
    c = _ctx(ctx)
    if (data is None) == (source is None):
        raise EntityError(f"log {cls.ENTITY_TYPE} {name!r}: give exactly one of data (a DataFrame) or source (a file)")
    entity_id = new_id()
    if data is not None:
        path = c.material_url(project, cls.ENTITY_TYPE, name, entity_id, "data.parquet")
    else:
        src = Path(source)  # type: ignore[arg-type]
        if not src.is_file():
            raise EntityError(f"log {cls.ENTITY_TYPE} {name!r}: source file {str(src)!r} does not exist")
        path = c.material_url(project, cls.ENTITY_TYPE, name, entity_id, src.name)
        kwargs.setdefault("src_path", str(src))
    entity = cls.build(project=project, name=name, kind=kind, uuid=entity_id, spec={"path": path, **kwargs})
    entity._ctx = ctx
    store = c.data_store(path)
    try:
        if data is not None:
            from digitalhub_provider.stores.data.tables import write_df

            write_df(c, data, path)
        else:
            store.upload(src, path)
        return create_entity(entity, ctx=ctx)
    except BaseException:
        try:
            store.delete(path)
        finally:
            raise


# -- read -------------------------------------------------------------------------------------
def get_entity(
    cls: type[E],
    identifier: str | None = None,
    project: str | None = None,
    entity_name: str | None = None,
    entity_id: str | None = None,
    ctx: Context | None = None,
    **_: Any,
) -> E:
    """By key (``store://...``), by name (latest) or by id: the seed's keywords and the
    current SDK's positional identifier both work."""
    c = _ctx(ctx)
    etype = cls.ENTITY_TYPE
    for what, value in (("identifier", identifier), ("entity_name", entity_name), ("entity_id", entity_id)):
        if value is not None and not isinstance(value, str):
            raise EntityError(
                f"get {etype}: {what} must be a string (a key store://..., a name or an id), "
                f"got {type(value).__name__} {value!r}"
            )
    if identifier is not None and is_key(identifier):
        key = parse_key(identifier)
        if key.entity_type != etype:
            raise EntityError(f"{identifier!r} is the key of a {key.entity_type}, not of a {etype}")
        project, entity_id, entity_name = key.project, key.id, key.name
    elif identifier is not None:
        entity_name = identifier
    if project is None:
        raise EntityError(f"get {etype}: a project is needed unless the identifier is a key")
    if entity_id:
        return _wrap(cls, c.metadata.get(project, etype, entity_id), ctx)
    if entity_name:
        if etype in ("task", "run"):
            return _wrap(cls, c.metadata.get(project, etype, entity_name), ctx)
        return _wrap(cls, c.metadata.get_latest(project, etype, entity_name), ctx)
    raise EntityError(f"get {etype}: give a key (store://...), a name (entity_name=) or an id (entity_id=)")


def get_entity_by_key(key: str, ctx: Context | None = None) -> Entity:
    parsed = parse_key(key)
    return get_entity(ENTITY_CLASSES[parsed.entity_type], key, ctx=ctx)


LIST_FILTERS = ("name", "kind", "state", "function_name", "all_versions", "limit", "offset")


def list_entities(cls: type[E], project: str, ctx: Context | None = None, **filters: Any) -> list[E]:
    unknown = sorted(set(filters) - set(LIST_FILTERS))
    if unknown:
        raise EntityError(
            f"unknown filter(s) {', '.join(map(repr, unknown))} for list_{cls.ENTITY_TYPE}s: "
            f"use {', '.join(LIST_FILTERS)}"
        )
    c = _ctx(ctx)
    return [_wrap(cls, d, ctx) for d in c.metadata.list(project, cls.ENTITY_TYPE, **filters)]


# -- delete ------------------------------------------------------------------------------------
def delete_entity(
    cls: type[E],
    identifier: str | None = None,
    project: str | None = None,
    entity_name: str | None = None,
    entity_id: str | None = None,
    delete_all_versions: bool = False,
    cascade: bool = False,
    ctx: Context | None = None,
    **_: Any,
) -> int:
    """Delete one version (by id, or the latest by name) or every version of a name, with its files;
    a function or workflow with tasks or runs needs ``cascade``, which deletes them too."""
    c = _ctx(ctx)
    etype = cls.ENTITY_TYPE
    if entity_id and delete_all_versions:
        raise EntityError("delete: entity_id and delete_all_versions=True exclude each other")
    if identifier is not None and is_key(identifier) and parse_key(identifier).id and delete_all_versions:
        raise EntityError("delete: a key with an id names one version; drop the id to delete_all_versions")
    target = get_entity(cls, identifier, project=project, entity_name=entity_name, entity_id=entity_id, ctx=ctx)
    if delete_all_versions:
        versions = [e["id"] for e in c.metadata.list(target.project, etype, name=target.name, all_versions=True)]
    else:
        versions = [target.id]
    return deletion.delete_versions(c, target.project, etype, target.name or "", versions, cascade)


# -- import / export -----------------------------------------------------------------------
def import_entity(
    file: str | os.PathLike[str], ctx: Context | None = None, expected: type[Entity] | None = None
) -> Entity:
    """Load an entity from a YAML file written by ``export()`` and save it with its id."""
    path = Path(file)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise EntityError(f"cannot import {str(path)!r}: no such file") from None
    except yaml.YAMLError as exc:
        raise EntityError(f"cannot import {str(path)!r}: unreadable YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not all(k in data for k in ("kind", "metadata", "spec")):
        raise EntityError(f"cannot import {str(path)!r}: expected an entity with kind, metadata and spec")
    etype = _type_of(data)
    cls = ENTITY_CLASSES[etype]
    if expected is not None and cls is not expected:
        raise EntityError(f"cannot import {str(path)!r}: it holds a {etype}, not a {expected.ENTITY_TYPE}")
    try:
        entity = cls.from_dict(data, ctx)
    except ValueError as exc:
        raise EntityError(f"cannot import {str(path)!r}: {exc}") from None
    entity.spec = validate_spec(etype, entity.kind, entity.spec)
    c = _ctx(ctx)
    get_or_create_project(entity.project, ctx=ctx)
    try:
        stored = c.metadata.get(entity.project, etype, entity.id)
    except EntityNotFoundError:
        c.insert(etype, entity.to_dict())
        return entity
    if etype == "run":  # a run's status is the run controller's alone: the stored one stays
        entity.status = cls.from_dict(stored).status
    c.metadata.write(update=[(etype, entity.to_dict())])
    return entity


def _type_of(data: dict[str, Any]) -> str:
    key = data.get("key")
    if isinstance(key, str) and is_key(key):
        return parse_key(key).entity_type
    kind = str(data.get("kind"))
    for etype in ("function", "workflow", "dataitem", "artifact", "model", "task", "run", "project"):
        if kind in _kinds(etype):
            return etype
    raise EntityError(f"cannot tell the entity type of kind {kind!r}")


def _kinds(etype: str) -> list[str]:
    from digitalhub_provider.entities.specs import kinds_of

    return kinds_of(etype)
