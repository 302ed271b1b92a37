"""DigitalHub's rules for names and ids, checked wherever a name enters: in entities, and where
names become data store paths (kept out of the entities package: a runner checks paths without
loading the entities)."""

from __future__ import annotations

import re

from digitalhub_provider.errors import EntityError

VERSIONED_TYPES = ("function", "workflow", "dataitem", "artifact", "model")
UNVERSIONED_TYPES = ("task", "run")
ENTITY_TYPES = ("project", *VERSIONED_TYPES, *UNVERSIONED_TYPES)

# Names end up in keys, paths and Kubernetes labels: no '/', ':' or spaces.
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._+-]{0,253}$")
# Projects become namespaces and folders: lower case DNS labels.
PROJECT_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def validate_name(name: object, what: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise EntityError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit (at most 254 characters)"
        )
    return name


def validate_project_name(name: object) -> str:
    if not isinstance(name, str) or not PROJECT_RE.match(name):
        raise EntityError(
            f"invalid project name {name!r}: use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (at most 63 characters)"
        )
    return name


def validate_id(value: object) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise EntityError(f"invalid entity id {value!r}")
    return value
