"""Projects: get_or_create / get / list, a duplicate name, a missing project, config round trip."""

from __future__ import annotations

import digitalhub as dh
from _common import emit, error_of, param

project, other, missing = param("project"), param("other_project"), param("missing_project")
store = param("files_store")

created = dh.get_or_create_project(project, description="first", config={"default_files_store": store})
again = dh.get_or_create_project(project, description="second")  # found: nothing new
got = dh.get_project(project)
dh.get_or_create_project(other)
duplicate = error_of(dh.new_project, project, description="overwritten")
after_duplicate = dh.get_project(project)

emit(
    {
        "created": {"id": created.id, "name": created.name, "key": created.key, "kind": created.kind},
        "again_id": again.id,
        "again_description": again.metadata.description,
        "got": {
            "id": got.id,
            "name": got.name,
            "description": got.metadata.description,
            "config": got.spec.config,
            "source": got.spec.source,
        },
        "listed": sorted(p.name for p in dh.list_projects()),
        "duplicate": duplicate,
        "description_after_duplicate": after_duplicate.metadata.description,
        "missing": error_of(dh.get_project, missing),
    }
)
