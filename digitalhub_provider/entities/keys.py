"""Entity keys and names, as DigitalHub writes them.

Versioned entities: ``store://{project}/{type}/{kind}/{name}:{id}``.
Tasks and runs:     ``store://{project}/{type}/{kind}/{id}``.
A versioned key without ``:{id}`` names the latest version.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from digitalhub_provider.errors import EntityError
from digitalhub_provider.names import (  # noqa: F401 - the names' rules, as entities use them
    ENTITY_TYPES,
    ID_RE,
    NAME_RE,
    PROJECT_RE,
    UNVERSIONED_TYPES,
    VERSIONED_TYPES,
    validate_id,
    validate_name,
    validate_project_name,
)

SCHEME = "store://"


class Key(NamedTuple):  # a NamedTuple: cheaper to create at import than a frozen dataclass
    project: str
    entity_type: str
    kind: str
    name: str | None
    id: str | None

    def __str__(self) -> str:
        return build_key(self.project, self.entity_type, self.kind, self.name, self.id)


def build_key(project: str, entity_type: str, kind: str, name: str | None, entity_id: str | None) -> str:
    if entity_type in UNVERSIONED_TYPES:
        return f"{SCHEME}{project}/{entity_type}/{kind}/{entity_id}"
    suffix = f":{entity_id}" if entity_id else ""
    return f"{SCHEME}{project}/{entity_type}/{kind}/{name}{suffix}"


def is_key(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def parse_key(key: object) -> Key:
    """Split a key into its parts; a malformed key is an :class:`EntityError` naming it."""
    if not isinstance(key, str) or not key.startswith(SCHEME):
        raise EntityError(f"malformed key {key!r}: a key starts with {SCHEME!r}")
    parts = key[len(SCHEME) :].split("/")
    if len(parts) != 4 or not all(parts):
        raise EntityError(
            f"malformed key {key!r}: expected store://project/type/kind/name:id "
            "(or store://project/type/kind/id for tasks and runs)"
        )
    project, entity_type, kind, last = parts
    if entity_type not in ENTITY_TYPES or entity_type == "project":
        raise EntityError(f"malformed key {key!r}: unknown entity type {entity_type!r}")
    validate_project_name(project)
    if entity_type in UNVERSIONED_TYPES:
        return Key(project, entity_type, kind, None, validate_id(last))
    name, sep, entity_id = last.partition(":")
    validate_name(name)
    if sep:
        validate_id(entity_id)
    return Key(project, entity_type, kind, name, entity_id or None)


# DigitalHub Core's own reference to a function version, as its SDK writes it in a task's or run's
# spec: ``python://project/name:id``.
RUNTIME_REF = re.compile(r"^[a-z][a-z0-9+.-]*://(?P<project>[^/]+)/(?P<name>[^/:]+)(?::(?P<id>[^/:]+))?$")


def function_ref(ref: object) -> tuple[str | None, str | None]:
    """The (name, id) of the function or workflow a task's or run's spec points to, from a key
    (``store://p/function/python/f:id``) or a runtime reference (``python://p/f:id``); (None, None)
    for anything else. A malformed key is an :class:`EntityError`."""
    if not isinstance(ref, str):
        return None, None
    if ref.startswith(SCHEME):
        key = parse_key(ref)  # a malformed key is an error, not "no function"
        return key.name, key.id
    match = RUNTIME_REF.match(ref)
    return (match["name"], match["id"]) if match else (None, None)
