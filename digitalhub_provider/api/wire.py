"""Entities as DigitalHub Core's REST API carries them, checked before they are stored.

The official SDK rebuilds every entity it gets back and validates it again, so an
entity is stored as it was sent: the checks here only refuse what is wrong (a
malformed envelope, a name or id DigitalHub would reject, a spec field of the wrong
type) and fill what a client may leave out (timestamps, the key, the CREATED state).

A spec is checked against this platform's model of its kind where the two share
fields (:func:`~digitalhub_provider.entities.specs.core.core_spec`): DigitalHub Core's SDK
nests a function's code under ``source`` and sends fields this platform has no use for
(they are kept, not checked).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from digitalhub_provider.api.errors import bad_request
from digitalhub_provider.entities.base import now_iso
from digitalhub_provider.entities.keys import (
    ID_RE,
    NAME_RE,
    PROJECT_RE,
    VERSIONED_TYPES,
    build_key,
)
from digitalhub_provider.entities.specs import validate_spec
from digitalhub_provider.entities.specs.core import core_spec
from digitalhub_provider.errors import EntityError
from digitalhub_provider.states import State

# The path segment of each entity type under /api/v1/-/{project}/.
PLURALS: dict[str, str] = {
    "functions": "function",
    "workflows": "workflow",
    "tasks": "task",
    "runs": "run",
    "dataitems": "dataitem",
    "artifacts": "artifact",
    "models": "model",
}

# The states the official SDK accepts on any entity it reads back (it raises on others); a run's are
# the State members among them. One string: run states are named through State elsewhere.
SDK_STATES = frozenset(
    "BUILT CANCELLED COMPLETED CREATED CREATING DELETED DELETING ERROR FSM_ERROR IDLE NONE ONLINE PENDING "  # noqa: SIM905
    "READY RESUME RUN_ERROR RUNNING STOP STOPPED SUCCESS UNKNOWN UPLOADING".split()
)


class Envelope(BaseModel):
    """What every entity carries (the rest of the body is kept as sent)."""

    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    kind: str
    project: str | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


def entity_type_of(plural: str) -> str:
    try:
        return PLURALS[plural]
    except KeyError:
        raise bad_request(f"unknown entity type {plural!r}: expected one of {', '.join(PLURALS)}") from None


def _envelope(body: Any) -> Envelope:
    if not isinstance(body, dict):
        raise bad_request(f"the body must be a JSON object, not {type(body).__name__}")
    if body.get("spec") is None:
        raise bad_request("missing spec: every entity has a spec (an object, possibly empty)")
    try:
        return Envelope.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise bad_request(f"invalid field {field!r}: {err['msg']}") from None


def _fill_metadata(entity: dict[str, Any], project: str, name: str, versioned: bool) -> None:
    metadata = dict(entity.get("metadata") or {})
    stamp = now_iso()
    metadata.setdefault("project", project)
    metadata.setdefault("name", name)
    metadata.setdefault("created", stamp)
    metadata["updated"] = metadata.get("updated") or stamp
    if versioned:
        metadata.setdefault("version", entity["id"])
    entity["metadata"] = metadata


def _check_state(entity: dict[str, Any]) -> None:
    status = entity.get("status")
    if status is None:
        entity["status"] = {"state": State.CREATED.value}
        return
    status.setdefault("state", State.CREATED.value)
    if status["state"] not in SDK_STATES:
        raise bad_request(f"invalid field 'status.state': {status['state']!r} is not a DigitalHub state")


def check_entity(entity_type: str, project: str, body: Any, path_id: str | None = None) -> dict[str, Any]:
    """The entity to store for a POST (``path_id`` None) or PUT of ``/api/v1/-/{project}/{type}``;
    raises a 400 :class:`ApiError` naming what is wrong."""
    env = _envelope(body)
    if path_id is not None and env.id != path_id:
        raise bad_request(f"the body's id {env.id!r} differs from the path's {path_id!r}")
    if not ID_RE.match(env.id):
        raise bad_request(f"invalid field 'id': {env.id!r} (letters, digits, '-' and '_', at most 64)")
    if env.project is not None and env.project != project:
        raise bad_request(f"the body's project {env.project!r} differs from the path's {project!r}")
    if not NAME_RE.match(env.name):
        raise bad_request(f"invalid field 'name': {env.name!r} (letters, digits, '.', '_', '+' or '-')")
    try:
        validate_spec(entity_type, env.kind, core_spec(entity_type, env.kind, env.spec or {}))
    except EntityError as exc:
        raise bad_request(str(exc)) from None
    entity = dict(body)
    entity["project"] = project
    _fill_metadata(entity, project, env.name, entity_type in VERSIONED_TYPES)
    _check_state(entity)
    entity.setdefault("key", build_key(project, entity_type, env.kind, env.name, env.id))
    return entity


def check_project(body: Any, path_name: str | None = None) -> dict[str, Any]:
    """The project to store for ``POST /api/v1/projects`` (or a PUT of ``path_name``): its id is its name."""
    env = _envelope(body)
    if path_name is not None and env.name != path_name:
        raise bad_request(f"the body's name {env.name!r} differs from the path's {path_name!r}")
    if not PROJECT_RE.match(env.name):
        raise bad_request(
            f"invalid field 'name': {env.name!r} (a project is lower-case letters, digits and '-', at most 63)"
        )
    if env.id != env.name:
        raise bad_request(f"a project's id is its name: id {env.id!r}, name {env.name!r}")
    if env.kind != "project":
        raise bad_request(f"invalid field 'kind': {env.kind!r} (a project's kind is 'project')")
    try:
        validate_spec("project", "project", env.spec)
    except EntityError as exc:
        raise bad_request(str(exc)) from None
    entity = dict(body)
    entity["project"] = env.name
    _fill_metadata(entity, env.name, env.name, versioned=False)
    _check_state(entity)
    entity.setdefault("key", f"store://{env.name}")
    return entity
