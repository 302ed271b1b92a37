"""Deletes: all versions of a function with cascade (its tasks and runs go, another function's stay),
then the project with cascade (gone; a new project of that name starts empty)."""

from __future__ import annotations

import digitalhub as dh
from _common import CODE, PYTHON_VERSION, emit, error_of, executable, ids_or_error, param

project = param("project")
dh.get_or_create_project(project)
spec = {"kind": "python", "code": CODE, "handler": "add", "python_version": PYTHON_VERSION}

doomed_v1 = dh.new_function(project=project, name="doomed", **spec)
doomed_v2 = dh.new_function(project=project, name="doomed", **spec)
keeper = dh.new_function(project=project, name="keeper", **spec)
doomed_runs = [
    doomed_v1.run(action="job", local_execution=True, parameters={"a": 1, "b": 2}),
    doomed_v2.run(action="job", local_execution=True, parameters={"a": 3, "b": 4}),
]
kept_run = keeper.run(action="job", local_execution=True, parameters={"a": 5, "b": 6})
before = {
    "runs": sorted(r.id for r in dh.list_runs(project)),
    "tasks": sorted(t.spec.function for t in dh.list_tasks(project)),
    "states": [r.status.state for r in [*doomed_runs, kept_run]],
    "sums": [r.result("sum") for r in [*doomed_runs, kept_run]],
}

dh.delete_function("doomed", project=project, delete_all_versions=True, cascade=True)
after = {
    "versions": ids_or_error(dh.get_function_versions, "doomed", project=project),
    "get_latest": error_of(dh.get_function, "doomed", project=project),
    "get_v1": error_of(dh.get_function, "doomed", project=project, entity_id=doomed_v1.id),
    "functions": sorted(f.name for f in dh.list_functions(project, versions="all")),
    "runs": sorted(r.id for r in dh.list_runs(project)),
    "tasks": sorted(t.spec.function for t in dh.list_tasks(project)),
    "doomed_run": [error_of(dh.get_run, r.id, project=project) for r in doomed_runs],
    "kept_run_state": dh.get_run(kept_run.id, project=project).status.state,
}

dh.delete_project(project, cascade=True)
gone = error_of(dh.get_project, project)
listed_after_delete = sorted(p.name for p in dh.list_projects())
recreated = dh.new_project(project)
leftovers = {
    "functions": len(dh.list_functions(project, versions="all")),
    "runs": len(dh.list_runs(project)),
    "tasks": len(dh.list_tasks(project)),
}
dh.delete_project(project, cascade=True)

emit(
    {
        "doomed": [doomed_v1.id, doomed_v2.id],
        "doomed_functions": [executable(project, doomed_v1), executable(project, doomed_v2)],
        "keeper": {"id": keeper.id, "function": executable(project, keeper)},
        "doomed_runs": [r.id for r in doomed_runs],
        "kept_run": kept_run.id,
        "before": before,
        "after": after,
        "project_gone": gone,
        "listed_after_delete": listed_after_delete,
        "recreated": recreated.name,
        "leftovers": leftovers,
        "final": error_of(dh.get_project, project),
    }
)
