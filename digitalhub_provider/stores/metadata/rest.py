"""Metadata store over DigitalHub Core's REST API: ``metadata_url: https://dhcore.example.org``.

The operators and the SDK then record functions, runs, outputs and lineage in a DigitalHub
Core instance (this provider's REST API, or another server speaking it) instead of SQL. The
credentials ride in the URL's password (the connection's ``metadata_password``, masked):
``https://:TOKEN@host`` sends a bearer token, ``https://user:PASSWORD@host`` HTTP Basic.

The API has no transactions, so what SQL does in one the store does in steps: a write
creates, then updates, entity by entity, and when one step fails it deletes what it had
created (an update already made stays). A guarded write (``expect``) reads the stored state
first and refuses when it changed; this provider's server checks every run update against
the transition table too, so a STOPPED run is not overwritten even in the window between the
read and the update. A run goes out with ``local_execution: true`` (see :func:`_wire`): its
writer executes it, and a server must not. Lists filter and page in the server (several states: the ``state``
parameter repeated, which this provider's server reads as "any of them"; labels: ``labels`` repeated, "all of them").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from digitalhub_provider.errors import EntityExistsError, EntityNotFoundError, StateChangedError, StoreError
from digitalhub_provider.stores.metadata.base import Entity, MetadataStore, Write

PAGE = 500  # entities per request when a list walks pages
TIMEOUT = 60.0


def _split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without credentials, and the Authorization header they make."""
    import base64

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    if parts.password is None:
        return base, {}
    password = unquote(parts.password)
    if not parts.username:
        return base, {"Authorization": f"Bearer {password}"}
    raw = f"{unquote(parts.username)}:{password}".encode()
    return base, {"Authorization": "Basic " + base64.b64encode(raw).decode()}


class RestMetadataStore(MetadataStore):
    def __init__(self, url: str) -> None:
        import httpx

        self.url = url  # with its credentials: what a runner of this process is given (never logged)
        self.base, headers = _split_credentials(url)
        self._client = httpx.Client(base_url=self.base, headers=headers, timeout=TIMEOUT)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RestMetadataStore({self.base!r})"

    # -- HTTP ------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            res = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the metadata store {self.base}: {type(exc).__name__}: {exc}") from None
        if res.status_code < 400:
            return res.json() if res.content else None
        text = res.text[:500]
        if res.status_code == 404 and "No such EntityName" in text:
            raise EntityNotFoundError(_message(res))
        if res.status_code == 400 and "Duplicated entity" in text:
            raise EntityExistsError(_message(res))
        if res.status_code == 409 or (res.status_code == 400 and "cannot go from" in text):
            raise StateChangedError(_message(res))
        if res.status_code in (401, 403):
            raise StoreError(f"the metadata store {self.base} refused the credentials ({res.status_code})")
        raise StoreError(f"the metadata store {self.base} answered {method} {path} with {res.status_code}: {text}")

    @staticmethod
    def _path(project: str, entity_type: str, entity_id: str | None = None) -> str:
        if entity_type == "project":
            return f"/api/v1/projects/{quote(project)}"
        path = f"/api/v1/-/{quote(project)}/{entity_type}s"
        return f"{path}/{quote(entity_id)}" if entity_id is not None else path

    # -- reads ---------------------------------------------------------------------------------------
    def get(self, project: str, entity_type: str, entity_id: str) -> Entity:
        if entity_type == "project" and entity_id != project:
            raise EntityNotFoundError(f"project {entity_id!r} is not {project!r}")
        return dict(self._request("GET", self._path(project, entity_type, entity_id)))

    def get_latest(self, project: str, entity_type: str, name: str) -> Entity:
        found = self.list(project, entity_type, name=name, limit=1)
        if not found:
            raise EntityNotFoundError(f"{entity_type} {name!r} not found in project {project!r}")
        return found[0]

    def _query(
        self,
        entity_type: str,
        name: str | None,
        kind: str | None,
        state: str | Sequence[str] | None,
        function_name: str | None,
        function_id: str | None,
        labels: Sequence[str] | None,
        all_versions: bool,
        project: str | None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {k: v for k, v in (("name", name), ("kind", kind)) if v is not None}
        if state is not None:
            query["state"] = state if isinstance(state, str) else list(state)  # several: the param repeated
        if labels:
            query["labels"] = [labels] if isinstance(labels, str) else list(labels)  # every one: repeated too
        if function_name is not None:
            # The server matches a function reference on its name and version; the kind is not known here.
            ref = f"store://{project}/function/-/{function_name}" + (f":{function_id}" if function_id else "")
            query["function"] = ref
        if all_versions:
            query["versions"] = "all"
        return query

    def _pages(self, path: str, query: dict[str, Any], first: int, size: int) -> Iterator[Entity]:
        page = first
        while True:
            got = self._request("GET", path, params={**query, "page": page, "size": size})
            yield from got.get("content") or []
            if page >= int(got.get("totalPages") or 0) - 1:
                return
            page += 1

    def list(
        self,
        project: str | None,
        entity_type: str,
        *,
        name: str | None = None,
        kind: str | None = None,
        state: str | Sequence[str] | None = None,
        function_name: str | None = None,
        function_id: str | None = None,
        labels: Sequence[str] | None = None,
        all_versions: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Entity]:
        if project is None and entity_type != "project":
            raise StoreError(f"listing {entity_type}s needs a project")
        path = "/api/v1/projects" if entity_type == "project" else self._path(project or "", entity_type)
        if state is not None and not isinstance(state, str) and not state:
            return []
        query = self._query(entity_type, name, kind, state, function_name, function_id, labels, all_versions, project)
        size = min(PAGE, offset + limit) if limit else PAGE
        first = offset // size  # the page that holds the first entity wanted
        out: list[Entity] = []
        for i, entity in enumerate(self._pages(path, query, first, size), start=first * size):
            if i < offset:
                continue
            out.append(entity)
            if limit is not None and len(out) >= limit:
                break
        return out

    def count(
        self,
        project: str | None,
        entity_type: str,
        *,
        name: str | None = None,
        kind: str | None = None,
        state: str | Sequence[str] | None = None,
        function_name: str | None = None,
        function_id: str | None = None,
        labels: Sequence[str] | None = None,
        all_versions: bool = False,
    ) -> int:
        path = "/api/v1/projects" if entity_type == "project" else self._path(project or "", entity_type)
        if state is not None and not isinstance(state, str) and not state:
            return 0
        query = self._query(entity_type, name, kind, state, function_name, function_id, labels, all_versions, project)
        return int(self._request("GET", path, params={**query, "page": 0, "size": 1}).get("totalElements") or 0)

    # -- writes ----------------------------------------------------------------------------------------
    def write(
        self, *, create: Sequence[Write] = (), update: Sequence[Write] = (), expect: Mapping[str, str] | None = None
    ) -> None:
        with self._lock:  # this process's writes one at a time: the steps of one never interleave with another's
            for entity_type, entity in update:
                expected = (expect or {}).get(entity["id"])
                if expected is not None:
                    found = self.get(entity["project"], entity_type, entity["id"])
                    stored = (found.get("status") or {}).get("state")
                    if stored != expected:
                        raise StateChangedError(
                            f"{entity_type} {entity['id']} is {stored} in the store, not {expected}: "
                            "another process changed it"
                        )
            created: list[Write] = []
            try:
                for entity_type, entity in create:
                    if entity_type == "project":
                        self._request("POST", "/api/v1/projects", json=entity)
                    else:
                        path = self._path(entity["project"], entity_type)
                        self._request("POST", path, json=_wire(entity_type, entity))
                    created.append((entity_type, entity))
                for entity_type, entity in update:
                    path = self._path(entity["project"], entity_type, entity["id"])
                    self._request("PUT", path, json=_wire(entity_type, entity))
            except BaseException:
                for entity_type, entity in reversed(created):
                    try:
                        self._request("DELETE", self._path(entity["project"], entity_type, entity["id"]))
                    except StoreError:  # the write's own error is the one to report
                        pass
                raise

    def delete(
        self,
        project: str,
        entity_type: str,
        *,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        function_name: str | None = None,
        function_ids: Sequence[str] | None = None,
    ) -> int:
        if (ids is not None and not ids) or (function_ids is not None and not function_ids):
            return 0
        if entity_type == "project":
            if ids is not None and project not in ids:
                return 0
            try:
                self._request("DELETE", self._path(project, "project"), params={"cascade": "false"})
            except EntityNotFoundError:
                return 0
            return 1
        matches = self.list(project, entity_type, name=name, function_name=function_name, all_versions=True)
        chosen = [
            e
            for e in matches
            if (ids is None or e["id"] in ids) and (function_ids is None or _function_id(e) in function_ids)
        ]
        for entity in chosen:
            self._request("DELETE", self._path(project, entity_type, entity["id"]), params={"cascade": "false"})
        return len(chosen)

    def delete_project(self, project: str) -> int:
        counted = sum(self.count(project, t, all_versions=True) for t in _TYPES)
        try:
            self._request("DELETE", self._path(project, "project"), params={"cascade": "true"})
        except EntityNotFoundError:
            return counted
        return counted + 1


def _wire(entity_type: str, entity: Entity) -> Entity:
    """A run as DigitalHub Core must read it: executed by its client. ``local_execution`` says there
    who executes a run (false: the server itself), and every run this store records is executed by
    the process that writes it (an Airflow task, locally or through its pod, or the SDK); where it
    ran is in ``status.launcher``."""
    if entity_type != "run" or (entity.get("spec") or {}).get("local_execution") is True:
        return entity
    return {**entity, "spec": {**(entity.get("spec") or {}), "local_execution": True}}


_TYPES = ("function", "workflow", "task", "run", "dataitem", "artifact", "model")


def _function_id(entity: Entity) -> str | None:
    from digitalhub_provider.entities.keys import function_ref

    spec = entity.get("spec") or {}
    return function_ref(spec.get("function") or spec.get("workflow"))[1]


def _message(res: Any) -> str:
    try:
        return str(res.json().get("message") or res.text)
    except ValueError:
        return str(res.text)
