"""What each route does, over the metadata store and the run controller (no HTTP here).

Lists page in SQL (a page and a count, both on the store's indexes); deletes
cascade the way DigitalHub Core does: a function version takes its tasks and
their runs with it, a project everything in it, files included (a function with
runs is deleted only with ``cascade``: :mod:`~digitalhub_provider.stores.deletion`). A run's status changes only
through the run controller, as everywhere in the package.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from digitalhub_provider.api.errors import ApiError, bad_request, duplicated, not_found
from digitalhub_provider.api.execution import AirflowRun, Executor, NotConfigured
from digitalhub_provider.api.wire import check_entity, check_project
from digitalhub_provider.entities import Run, State
from digitalhub_provider.entities.keys import function_ref
from digitalhub_provider.errors import (
    DigitalHubError,
    EntityError,
    EntityExistsError,
    EntityNotFoundError,
    IllegalTransitionError,
)
from digitalhub_provider.sdk.context import Context
from digitalhub_provider.sdk.controller import RunController
from digitalhub_provider.stores import deletion
from digitalhub_provider.stores.metadata import MetadataStore

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
# The list filters this server applies (all exact matches); ``versions=all`` lists every version.
FILTERS = ("name", "kind", "state", "function", "workflow", "versions")


def page_shape(content: list[dict[str, Any]], page: int, size: int, total: int) -> dict[str, Any]:
    """Spring's page, as DigitalHub Core returns lists (the SDK reads ``content`` and ``totalPages``)."""
    pages = math.ceil(total / size) if total else 0
    return {
        "content": content,
        "pageable": {"pageNumber": page, "pageSize": size, "offset": page * size},
        "totalElements": total,
        "totalPages": pages,
        "number": page,
        "size": size,
        "numberOfElements": len(content),
        "first": page == 0,
        "last": page >= pages - 1,
        "empty": not content,
    }


class Service:
    def __init__(self, ctx: Context, executor: Executor | None = None) -> None:
        self.ctx = ctx
        self.executor: Executor = executor or NotConfigured()

    @property
    def store(self) -> MetadataStore:
        return self.ctx.metadata

    # -- projects -----------------------------------------------------------------------
    def get_project(self, name: str) -> dict[str, Any]:
        try:
            return self.store.get(name, "project", name)
        except EntityNotFoundError:
            raise not_found(f"project {name!r}") from None

    def create_project(self, body: Any) -> dict[str, Any]:
        entity = check_project(body)
        try:
            self.store.write(create=[("project", entity)])
        except EntityExistsError:
            raise duplicated(f"project {entity['name']!r} exists") from None
        return entity

    def update_project(self, name: str, body: Any) -> dict[str, Any]:
        self.get_project(name)
        entity = check_project(body, path_name=name)
        self.store.write(update=[("project", entity)])
        return entity

    def delete_project(self, name: str, cascade: bool) -> None:
        self.get_project(name)
        if cascade:
            deletion.delete_project(self.ctx, name)
        else:
            self.store.delete(name, "project", ids=[name])

    def list_projects(self, page: int, size: int) -> dict[str, Any]:
        total = self.store.count(None, "project")
        content = self.store.list(None, "project", limit=size, offset=page * size) if total else []
        return page_shape(content, page, size, total)

    # -- entities of a project ----------------------------------------------------------
    def create(self, project: str, entity_type: str, body: Any) -> dict[str, Any]:
        self.get_project(project)
        entity = check_entity(entity_type, project, body)
        try:
            if entity_type == "run":
                RunController(self.ctx, "the REST client").admit(entity)
            else:
                self.store.write(create=[(entity_type, entity)])
        except EntityExistsError:
            raise duplicated(f"{entity_type} {entity['id']!r} exists") from None
        except IllegalTransitionError as exc:
            raise bad_request(str(exc)) from None
        submitted = entity_type == "run" and entity["status"]["state"] == State.CREATED.value
        if submitted and not (entity.get("spec") or {}).get("local_execution"):
            return self._submit(Run.from_dict(entity, self.ctx)).to_dict()
        return entity

    def _submit(self, run: Run) -> Run:
        """The platform executes the run: Airflow's ``digitalhub_runs`` DAG, triggered with its key; when
        Airflow cannot be asked, the run ends ERROR with the reason (never left CREATED)."""
        controller = RunController(self.ctx, "the REST client")
        try:
            airflow_run = self.executor.submit(run.id, run.key)
        except DigitalHubError as exc:
            return controller.transition(run, State.ERROR, f"cannot execute the run through Airflow: {exc}")
        return controller.record(run, airflow=airflow_run.to_dict())

    def get(self, project: str, entity_type: str, entity_id: str) -> dict[str, Any]:
        try:
            return self.store.get(project, entity_type, entity_id)
        except EntityNotFoundError:
            raise not_found(f"{entity_type} {entity_id!r} in project {project!r}") from None

    def update(self, project: str, entity_type: str, entity_id: str, body: Any) -> dict[str, Any]:
        stored = self.get(project, entity_type, entity_id)
        entity = check_entity(entity_type, project, body, path_id=entity_id)
        if entity["kind"] != stored["kind"] or entity["name"] != stored["name"]:
            raise bad_request(
                f"{entity_type} {entity_id!r} is {stored['kind']} {stored['name']!r}: an update keeps its name and kind"
            )
        if entity_type == "run":
            try:
                RunController(self.ctx, "the REST client").accept(Run.from_dict(stored, self.ctx), entity)
            except IllegalTransitionError as exc:
                raise bad_request(str(exc)) from None
        else:
            self.store.write(update=[(entity_type, entity)])
        return entity

    def delete(self, project: str, entity_type: str, entity_id: str, cascade: bool) -> None:
        stored = self.get(project, entity_type, entity_id)
        self._delete_versions(project, entity_type, stored["name"], [entity_id], cascade)

    def delete_by_name(self, project: str, entity_type: str, name: str, cascade: bool) -> None:
        versions = [e["id"] for e in self.store.list(project, entity_type, name=name, all_versions=True)]
        if not versions:
            raise not_found(f"{entity_type} named {name!r} in project {project!r}")
        self._delete_versions(project, entity_type, name, versions, cascade)

    def _delete_versions(self, project: str, entity_type: str, name: str, ids: list[str], cascade: bool) -> None:
        try:
            deletion.delete_versions(self.ctx, project, entity_type, name, ids, cascade)
        except EntityNotFoundError:
            raise
        except EntityError as exc:  # a function with runs, without cascade
            raise bad_request(str(exc)) from None

    def page(self, project: str, entity_type: str, filters: dict[str, str], page: int, size: int) -> dict[str, Any]:
        unknown = sorted(set(filters) - set(FILTERS))
        if unknown:
            raise bad_request(
                f"unsupported filter(s) {', '.join(map(repr, unknown))}: this server filters on {', '.join(FILTERS)}"
            )
        if page < 0 or not 0 < size <= MAX_PAGE_SIZE:
            raise bad_request(f"page must be 0 or more and size between 1 and {MAX_PAGE_SIZE}")
        query: dict[str, Any] = {
            "name": filters.get("name"),
            "kind": filters.get("kind"),
            "state": filters.get("state"),
            "all_versions": filters.get("versions") == "all",
        }
        ref = filters.get("function") or filters.get("workflow")
        if ref is not None:
            fname, fid = function_ref(ref)
            if fname is None:
                raise bad_request(f"filter function: {ref!r} is not a function reference (kind://project/name:id)")
            query.update(function_name=fname, function_id=fid)
        total = self.store.count(project, entity_type, **query)
        content = self.store.list(project, entity_type, **query, limit=size, offset=page * size) if total else []
        return page_shape(content, page, size, total)

    # -- runs ---------------------------------------------------------------------------
    def run(self, project: str, run_id: str) -> Run:
        return Run.from_dict(self.get(project, "run", run_id), self.ctx)

    def logs(self, project: str, run_id: str) -> list[dict[str, Any]]:
        from digitalhub_provider.sdk.outcomes import read_logs

        run = self.run(project, run_id)
        text = read_logs(run)
        if not text:
            return []
        return [
            {
                "id": f"{run_id}-log",
                "name": f"{run_id}-log",
                "kind": "log",
                "project": project,
                "metadata": {"project": project, "name": f"{run_id}-log", "created": run.metadata.updated},
                "spec": {"run": run_id},
                "status": {},
                "content": base64.b64encode(text.encode()).decode(),
            }
        ]

    def stop(self, project: str, run_id: str) -> dict[str, Any]:
        """STOPPED (the runner killed when it is a process of this host), and the Airflow DAG run that
        executes it failed, so that Airflow kills its task (which stops a pod too)."""
        run = RunController(self.ctx, "the REST client").stop(self.run(project, run_id), "stopped through the API")
        airflow = run.status.get("airflow")
        if isinstance(airflow, dict) and airflow.get("dag_run_id"):
            self.executor.stop(AirflowRun(str(airflow["dag_id"]), str(airflow["dag_run_id"])))
        return run.to_dict()

    def resume(self, project: str, run_id: str) -> dict[str, Any]:
        run = self.run(project, run_id)
        raise ApiError(400, f"run {run_id} is {run.state}: resuming a run is not supported by this server")
