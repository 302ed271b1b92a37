"""Local runs: a handler with a DataFrame output and a result, run twice (the task is reused),
a failing handler, list_runs with filters, run.logs(), get_run."""

from __future__ import annotations

import json

import digitalhub as dh
from _common import CODE, PYTHON_VERSION, describe, emit, error_of, executable, param, relationships

project = param("project")
dh.get_or_create_project(project)
spec = {"kind": "python", "code": CODE, "python_version": PYTHON_VERSION}

maker = dh.new_function(project=project, name="maker", handler="make_table", **spec)
run = maker.run(action="job", local_execution=True, parameters={"n": 4, "factor": 3})
table = run.output("table")
records = json.loads(table.as_df().to_json(orient="records"))
table_rels = relationships(table)
stored = dh.get_run(run.key)
by_id = dh.get_run(run.id, project=project)
logs = run.logs()

# A fresh object of the same function finds the task created by the first run.
fresh = dh.get_function("maker", project=project)
second = fresh.run(action="job", local_execution=True, parameters={"n": 2, "factor": 10})
tasks = dh.list_tasks(project, function=executable(project, maker))

exploder = dh.new_function(project=project, name="exploder", handler="explode", **spec)
failure = None
returned = None
try:
    returned = exploder.run(action="job", local_execution=True, parameters={"n": 7})
except Exception as exc:
    failure = describe(exc)
error_runs = dh.list_runs(project, state="ERROR")
completed_runs = dh.list_runs(project, state="COMPLETED")
maker_runs = maker.list_runs()
exploder_runs = dh.list_runs(project, function=executable(project, exploder))

emit(
    {
        "function": {"id": maker.id, "key": maker.key},
        "run": {
            "id": run.id,
            "key": run.key,
            "kind": run.kind,
            "state": run.status.state,
            "results": run.results(),
            "outputs": run.status.outputs,
            "relationships": relationships(run),
        },
        "result_total": run.result("total"),
        "table": {
            "id": table.id,
            "key": table.key,
            "kind": table.kind,
            "state": table.status.state,
            "path": table.spec.path,
            "relationships": table_rels,
        },
        "records": records,
        "stored": {
            "id": stored.id,
            "state": stored.status.state,
            "results": stored.results(),
            "outputs": stored.status.outputs,
            "spec_function": stored.spec.function,
            "local_execution": stored.spec.local_execution,
        },
        "by_id": {"id": by_id.id, "state": by_id.status.state},
        "logs": {"type": type(logs).__name__, "count": len(logs)},
        "second": {
            "id": second.id,
            "state": second.status.state,
            "total": second.result("total"),
            "task": second.spec.task,
            "first_task": stored.spec.task,
        },
        "tasks": [{"id": t.id, "kind": t.kind, "function": t.spec.function} for t in tasks],
        "failure": failure,
        "returned": None if returned is None else returned.status.state,
        "error_runs": [
            {"id": r.id, "state": r.status.state, "message": r.status.message, "function": r.spec.function}
            for r in error_runs
        ],
        "completed_runs": sorted(r.id for r in completed_runs),
        "maker_runs": sorted(r.id for r in maker_runs),
        "exploder_runs": [r.id for r in exploder_runs],
        "all_runs": len(dh.list_runs(project)),
        "dataitems_latest": [[d.name, d.id] for d in dh.list_dataitems(project)],
        "dataitems_all": len(dh.list_dataitems(project, versions="all")),
        "missing_run": error_of(dh.get_run, "0" * 32, project=project),
    }
)
