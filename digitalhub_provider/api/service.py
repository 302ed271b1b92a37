"""What each route does, over the metadata store and the run controller (no HTTP here).

Lists page in SQL (a page and a count, both on the store's indexes); deletes
cascade the way DigitalHub Core does: a function version takes its tasks and
their runs with it, a project everything in it, files included (a function with
runs is deleted only with ``cascade``: :mod:`~digitalhub_provider.stores.deletion`). A run's status changes only
through the run controller, as everywhere in the package.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
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
from digitalhub_provider.stores.data import scheme_of
from digitalhub_provider.stores.metadata import MetadataStore

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
# The list filters this server applies (all exact matches); ``versions=all`` lists every version; ``labels``
# (repeated) keeps the entities whose ``metadata.labels`` hold every one given.
FILTERS = ("name", "kind", "state", "function", "workflow", "versions", "labels")
PREVIEW_ROWS = 20
MAX_PREVIEW_ROWS = 200
# The entity types whose files may be downloaded (DigitalHub Core's ``files/download`` route).
MATERIAL_TYPES = ("dataitem", "artifact", "model")


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


@dataclass
class FileToSend:
    """A file for the client: ``path`` on this host, named ``filename``; ``cleanup`` removes the temporary
    folder it was downloaded into (None when it is the data store's own file)."""

    path: Path
    filename: str
    cleanup: tempfile.TemporaryDirectory[str] | None = None


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

    def page(self, project: str, entity_type: str, filters: dict[str, Any], page: int, size: int) -> dict[str, Any]:
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
        labels = filters.get("labels")
        if labels is not None:
            query["labels"] = [labels] if isinstance(labels, str) else list(labels)
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

    # -- the data of dataitems, artifacts and models -------------------------------------
    def _data_path(self, entity_type: str, entity: dict[str, Any]) -> str:
        """The entity's ``spec.path``, when this server may read it: under the data store's root. Anything
        else (an http(s) source, another local folder, another bucket, a path with '..') is refused, so
        that an entity cannot make the server read files, or fetch addresses, that it does not own: an
        http(s) source would let anyone who may create entities make this server call any address its
        network reaches."""
        name = entity.get("name")
        path = (entity.get("spec") or {}).get("path")
        if not isinstance(path, str) or not path:
            raise bad_request(f"{entity_type} {name!r} has no spec.path: there is no file to read")
        if "\x00" in path or ".." in path.split("?")[0].replace("\\", "/").split("/"):
            raise bad_request(f"{entity_type} {name!r}: path {path!r} is refused ('..' and NUL are not allowed)")
        if path.startswith(("http://", "https://")):
            raise bad_request(
                f"{entity_type} {name!r} is read from {path}: open it there (this server reads its data store only)"
            )
        root = self.ctx.data_root
        if scheme_of(path) != scheme_of(root):
            raise bad_request(f"{entity_type} {name!r}: path {path!r} is outside this server's data store ({root})")
        if scheme_of(root) == "file":
            inside = _local(path).resolve().is_relative_to(_local(root).resolve())
        else:
            inside = path.startswith(root.rstrip("/") + "/")
        if not inside:
            raise bad_request(f"{entity_type} {name!r}: path {path!r} is outside this server's data store ({root})")
        return path

    def _fetch(self, entity_type: str, entity: dict[str, Any], path: str) -> FileToSend:
        """The entity's file on this host: the data store's own file when it is local, else a download
        into a temporary folder (the caller removes it through ``cleanup``)."""
        name = entity.get("name")
        filename = PurePosixPath(path.split("?")[0].rstrip("/")).name or str(name)
        store = self.ctx.data_store(path)
        local = store.local_path(path)
        if local is not None:
            if local.is_dir():
                raise bad_request(
                    f"{entity_type} {name!r} is a folder ({path}): this server downloads single files only"
                )
            if not local.is_file():
                raise _gone(entity_type, name, f"no file at {path!r}")
            return FileToSend(local, filename)
        if path.endswith("/"):
            raise bad_request(f"{entity_type} {name!r} is a folder ({path}): this server downloads single files only")
        tmp = tempfile.TemporaryDirectory(prefix="dh-api-")
        try:
            downloaded = store.download(path, Path(tmp.name) / filename)
        except EntityNotFoundError as exc:
            tmp.cleanup()
            raise _gone(entity_type, name, str(exc)) from None
        except BaseException:
            tmp.cleanup()
            raise
        return FileToSend(downloaded, filename, tmp)

    def file(self, project: str, entity_type: str, entity_id: str) -> FileToSend:
        """The file of a dataitem, artifact or model, to stream to the client."""
        if entity_type not in MATERIAL_TYPES:
            raise bad_request(f"{entity_type}s have no files: only dataitems, artifacts and models do")
        entity = self.get(project, entity_type, entity_id)
        return self._fetch(entity_type, entity, self._data_path(entity_type, entity))

    def preview(self, project: str, entity_id: str, rows: int) -> dict[str, Any]:
        """The schema and first ``rows`` rows of a dataitem of kind table; only those rows are converted
        (Parquet: the first record batch; CSV: ``nrows``)."""
        if not 0 < rows <= MAX_PREVIEW_ROWS:
            raise bad_request(f"rows must be between 1 and {MAX_PREVIEW_ROWS}")
        entity = self.get(project, "dataitem", entity_id)
        name = entity.get("name")
        if entity.get("kind") != "table":
            raise bad_request(f"dataitem {name!r} is of kind {entity.get('kind')!r}: only a table has a preview")
        path = self._data_path("dataitem", entity)
        fmt = (entity.get("spec") or {}).get("file_format")
        source = self._fetch("dataitem", entity, path)
        try:
            df = _first_rows(source.path, path, fmt if isinstance(fmt, str) else None, rows)
        except (OSError, ValueError) as exc:  # pyarrow's and pandas' errors for a file that is not a table
            raise bad_request(f"the file of dataitem {name!r} cannot be read as a table: {exc}") from None
        finally:
            if source.cleanup is not None:
                source.cleanup.cleanup()
        total = (entity.get("status") or {}).get("rows")
        return {
            "schema": {"fields": [{"name": str(c), "type": str(t)} for c, t in df.dtypes.items()]},
            "rows": _json_rows(df),
            "total_rows": total if isinstance(total, int) and not isinstance(total, bool) else None,
        }


def _local(url: str) -> Path:
    return Path(url[len("file://") :] if url.startswith("file://") else url)


def _gone(entity_type: str, name: Any, detail: str) -> ApiError:
    return ApiError(404, f"the file of {entity_type} {name!r} is gone from the data store: {detail}")


def _first_rows(local: Path, path: str, file_format: str | None, rows: int) -> Any:
    """The first ``rows`` rows of a Parquet or CSV file as a DataFrame (the format by ``file_format``, else
    by the path's extension, as :func:`~digitalhub_provider.stores.data.tables.read_df` decides it)."""
    import pandas as pd

    fmt = (file_format or "").lower()
    if not fmt:
        lower = path.lower().split("?")[0]
        fmt = "csv" if lower.endswith((".csv", ".csv.gz", ".txt")) else "parquet"
    if fmt == "csv":
        return pd.read_csv(local, nrows=rows)
    if fmt != "parquet":
        raise ValueError(f"unknown format {fmt!r} (parquet or csv)")
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(local) as pf:
        batch = next(pf.iter_batches(batch_size=rows), None)
        # The file's schema keeps the pandas metadata: integer column labels and the index come back.
        table = pa.Table.from_batches([batch] if batch is not None else [], schema=pf.schema_arrow)
    df = table.slice(0, rows).to_pandas()
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()  # a named index is data the user wants to see
    return df


def _json_rows(df: Any) -> list[dict[str, Any]]:
    """Rows as JSON objects: pandas' own encoder turns NaN into null, timestamps into ISO strings and
    numpy scalars into numbers; what it cannot encode becomes its ``str``."""
    if not df.columns.is_unique:  # records need unique keys: a repeated label gets its position
        seen: set[str] = set()
        labels = []
        for i, c in enumerate(df.columns):
            label = str(c) if str(c) not in seen else f"{c}.{i}"
            seen.add(label)
            labels.append(label)
        df = df.set_axis(labels, axis=1)
    text = df.to_json(orient="records", date_format="iso", default_handler=str, force_ascii=False)
    rows: list[dict[str, Any]] = json.loads(text)
    return rows
