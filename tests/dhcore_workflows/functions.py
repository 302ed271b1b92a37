"""Function versions: two versions of one name, get latest / by id / by key, versions, lists,
a duplicate uuid, missing ids and names, an update, deleting one version."""

from __future__ import annotations

import uuid

import digitalhub as dh
from _common import CODE, PYTHON_VERSION, emit, error_of, param

project = param("project")
dh.get_or_create_project(project)
spec = {"kind": "python", "code": CODE, "handler": "add", "python_version": PYTHON_VERSION}

v1 = dh.new_function(project=project, name="alpha", description="v1", **spec)
v2 = dh.new_function(project=project, name="alpha", description="v2", **spec)
beta = dh.new_function(project=project, name="beta", description="beta", **spec)

latest = dh.get_function("alpha", project=project)
by_id = dh.get_function("alpha", project=project, entity_id=v1.id)
by_key = dh.get_function(v1.key)
versions = dh.get_function_versions("alpha", project=project)
listed = dh.list_functions(project)
listed_all = dh.list_functions(project, versions="all")
listed_beta = dh.list_functions(project, name="beta")

duplicate = error_of(dh.new_function, project=project, name="alpha", uuid=v1.id, description="dup", **spec)
after_duplicate = dh.get_function("alpha", project=project, entity_id=v1.id)
missing_id = error_of(dh.get_function, "alpha", project=project, entity_id=uuid.uuid4().hex)
missing_name = error_of(dh.get_function, "gamma", project=project)

beta.metadata.description = "beta updated"
updated = dh.update_function(beta)
beta_again = dh.get_function("beta", project=project, entity_id=beta.id)

dh.delete_function("alpha", project=project, entity_id=v1.id, cascade=True)
versions_after_delete = dh.get_function_versions("alpha", project=project)
deleted_get = error_of(dh.get_function, "alpha", project=project, entity_id=v1.id)

emit(
    {
        "v1": {"id": v1.id, "key": v1.key, "name": v1.name},
        "v2": {"id": v2.id, "key": v2.key},
        "beta_id": beta.id,
        "latest_id": latest.id,
        "by_id": {
            "id": by_id.id,
            "description": by_id.metadata.description,
            "kind": by_id.kind,
            "handler": by_id.spec.source.get("handler"),
            "python_version": by_id.spec.python_version,
            "has_code": bool(by_id.spec.source.get("base64") or by_id.spec.source.get("code")),
        },
        "by_key_id": by_key.id,
        "versions": [f.id for f in versions],
        "listed": sorted([f.name, f.id] for f in listed),
        "listed_all": sorted(f.id for f in listed_all),
        "listed_beta": [f.id for f in listed_beta],
        "duplicate": duplicate,
        "description_after_duplicate": after_duplicate.metadata.description,
        "missing_id": missing_id,
        "missing_name": missing_name,
        "updated": {"id": updated.id, "description": updated.metadata.description},
        "beta_again_description": beta_again.metadata.description,
        "versions_after_delete": [f.id for f in versions_after_delete],
        "deleted_get": deleted_get,
    }
)
