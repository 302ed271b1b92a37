"""Metadata store on SQL: a SQLite file by default, PostgreSQL by URL.

One table (:mod:`.schema`) holds every entity as JSON, with copies of the columns queries
filter and sort on. The schema is created and upgraded by Alembic the first time a process
opens a store, under a lock so that two processes don't race; every later open costs one
SELECT of the revision.

The statements are SQL text with named parameters, not SQLAlchemy expression-language
constructs: a task process lives for one run and issues each statement once, and compiling a
Core construct (plus its cache key) cost ~0.5 ms per statement per process. Column names in the
text come from fixed lists here, never from arguments; every value is bound. How they reach the
database (``sqlite3`` for SQLite, a SQLAlchemy engine otherwise) is :mod:`.connections`.
"""

from __future__ import annotations

import fcntl
import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from digitalhub_provider.entities.keys import function_ref
from digitalhub_provider.errors import EntityNotFoundError, StateChangedError, StoreError
from digitalhub_provider.stores.metadata import connections
from digitalhub_provider.stores.metadata.base import Entity, MetadataStore, Write
from digitalhub_provider.stores.metadata.connections import Transaction, expand

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0002"
TABLE = "dh_entities"  # schema.entities
COLUMNS = ("id", "project", "entity_type", "kind", "name", "state", "function_name", "function_id", "body")
UPDATED = ("kind", "state", "body", "function_name", "function_id")
FILTERS = ("name", "kind", "function_name", "function_id")  # list() filters by equality on these columns
_ready: set[str] = set()

INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
UPDATE = f"UPDATE {TABLE} SET {', '.join(f'{c} = :{c}' for c in UPDATED)} WHERE entity_type = :entity_type AND id = :id"
UPDATE_IF_STATE = f"{UPDATE} AND state = :expected"
STATE = f"SELECT state FROM {TABLE} WHERE entity_type = :entity_type AND id = :id"
GET = f"SELECT body FROM {TABLE} WHERE entity_type = :entity_type AND id = :id AND project = :project"
GET_LATEST = (
    f"SELECT body FROM {TABLE} WHERE project = :project AND entity_type = :entity_type AND name = :name "
    "ORDER BY pk DESC LIMIT 1"
)


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _function_ref(entity: Entity) -> tuple[str | None, str | None]:
    """The function (or workflow) a task or run belongs to, as (name, id)."""
    spec = entity.get("spec") or {}
    return function_ref(spec.get("function") or spec.get("workflow"))


def _row(entity_type: str, entity: Entity) -> dict[str, Any]:
    fname, fid = _function_ref(entity) if entity_type in ("task", "run") else (None, None)
    return {
        "id": entity["id"],
        "project": entity["project"],
        "entity_type": entity_type,
        "kind": entity["kind"],
        "name": entity["name"],
        "state": (entity.get("status") or {}).get("state"),
        "function_name": fname,
        "function_id": fid,
        "body": json.dumps(entity, separators=(",", ":"), default=str),
    }


F = TypeVar("F", bound=Callable[..., Any])


def reconnecting(method: F) -> F:
    """The call made once more when the server dropped a pooled connection (see
    :class:`~.connections.Disconnected`): a restarted PostgreSQL costs the first call after it a
    reconnection, not an error. No ping before each statement: it would cost every call a round trip."""

    @functools.wraps(method)
    def once_more(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except connections.Disconnected:
            return method(*args, **kwargs)

    return once_more  # type: ignore[return-value]


class SQLMetadataStore(MetadataStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = connections.sqlite_path(url) if url.startswith("sqlite") else None  # None: a server
        self._safe_url = url if self.path is not None else _without_password(url)  # in every error message
        if url not in _ready:
            self._migrate()
            _ready.add(url)

    # -- schema ---------------------------------------------------------------
    def _migrate(self) -> None:
        """Bring the schema to HEAD. A store already at HEAD (every open but the first) costs one
        SELECT: Alembic (~0.2 s to import) and the migration lock are only taken when it is not."""
        if self.path is not None and connections.sqlite_revision(self.path, self._safe_url) == HEAD:
            return  # SQLite at HEAD: SQLAlchemy is not even imported
        from sqlalchemy.exc import SQLAlchemyError

        try:
            if self.path is None and connections.engine_revision(self.url) == HEAD:  # unreachable: fails here
                return
            with self._migration_lock(), connections.engine(self.url).connect() as conn:
                from alembic.runtime.migration import MigrationContext

                if MigrationContext.configure(conn).get_current_revision() == HEAD:
                    return
                from alembic import command
                from alembic.config import Config

                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                reached = MigrationContext.configure(conn).get_current_revision()
                if reached != HEAD:  # e.g. an install that lost the migrations' files
                    raise StoreError(
                        f"cannot migrate the metadata store {self._safe_url}: the migrations in {MIGRATIONS} reach "
                        f"revision {reached!r}, this version needs {HEAD!r} (is the package installed whole?)"
                    )
                conn.commit()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the metadata store {self._safe_url}: {exc.__class__.__name__}: {exc}"
            ) from None

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.path is not None:
            with open(f"{self.path}.migrate.lock", "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            return
        from sqlalchemy import text

        with connections.engine(self.url).connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(74656)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(74656)"))
                conn.commit()

    # -- transactions -----------------------------------------------------------
    def _tx(self, write: bool) -> AbstractContextManager[Transaction]:
        if self.path is not None:
            return connections.sqlite_transaction(self.path, write, self._safe_url)
        return connections.engine_transaction(self.url, self._safe_url)

    # -- interface ---------------------------------------------------------------
    @reconnecting
    def write(
        self, *, create: Sequence[Write] = (), update: Sequence[Write] = (), expect: Mapping[str, str] | None = None
    ) -> None:
        with self._tx(write=True) as conn:
            if create:
                conn.run_many(INSERT, [_row(t, e) for t, e in create])
            for entity_type, entity in update:
                row = _row(entity_type, entity)
                params = {k: row[k] for k in ("entity_type", "id", *UPDATED)}
                expected = (expect or {}).get(entity["id"])
                if expected is None:
                    changed = conn.run(UPDATE, params)
                else:
                    changed = conn.run(UPDATE_IF_STATE, {**params, "expected": expected})
                if changed:
                    continue
                found = conn.rows(STATE, {"entity_type": entity_type, "id": entity["id"]})
                if expected is not None and found:
                    raise StateChangedError(
                        f"{entity_type} {entity['id']} is {found[0][0]} in the store, not {expected}: "
                        "another process changed it"
                    )
                raise EntityNotFoundError(
                    f"{entity_type} {entity['id']!r} does not exist in project {entity['project']!r}"
                )

    @reconnecting
    def get(self, project: str, entity_type: str, entity_id: str) -> Entity:
        with self._tx(write=False) as conn:
            rows = conn.rows(GET, {"entity_type": entity_type, "id": entity_id, "project": project})
        if not rows:
            raise EntityNotFoundError(f"{entity_type} with id {entity_id!r} not found in project {project!r}")
        return json.loads(rows[0][0])

    @reconnecting
    def get_latest(self, project: str, entity_type: str, name: str) -> Entity:
        with self._tx(write=False) as conn:
            rows = conn.rows(GET_LATEST, {"project": project, "entity_type": entity_type, "name": name})
        if not rows:
            raise EntityNotFoundError(f"{entity_type} {name!r} not found in project {project!r}")
        return json.loads(rows[0][0])

    @reconnecting
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
        where, params, expanding = self._where(
            project, entity_type, name, kind, state, function_name, function_id, labels, all_versions
        )
        query = f"SELECT body FROM {TABLE} WHERE {where} ORDER BY pk DESC"
        if limit is not None:
            query += " LIMIT :limit"
            params["limit"] = limit
        elif offset:
            query += " LIMIT -1" if self.path is not None else ""  # SQLite has no OFFSET without LIMIT
        if offset:
            query += " OFFSET :offset"
            params["offset"] = offset
        query, params = expand(query, params, expanding)
        with self._tx(write=False) as conn:
            return [json.loads(row[0]) for row in conn.rows(query, params)]

    @reconnecting
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
        where, params, expanding = self._where(
            project, entity_type, name, kind, state, function_name, function_id, labels, all_versions
        )
        query, params = expand(f"SELECT count(*) FROM {TABLE} WHERE {where}", params, expanding)
        with self._tx(write=False) as conn:
            return int(conn.rows(query, params)[0][0])

    def _where(
        self,
        project: str | None,
        entity_type: str,
        name: str | None,
        kind: str | None,
        state: str | Sequence[str] | None,
        function_name: str | None,
        function_id: str | None,
        labels: Sequence[str] | None,
        all_versions: bool,
    ) -> tuple[str, dict[str, Any], tuple[str, ...]]:
        """The WHERE clause of a listing (and its count), its parameters and the expanding ones."""
        params: dict[str, Any] = {"entity_type": entity_type}
        where = ["entity_type = :entity_type"]
        if project is not None:
            where.append("project = :project")
            params["project"] = project
        for col, value in zip(FILTERS, (name, kind, function_name, function_id), strict=True):
            if value is not None:
                where.append(f"{col} = :{col}")
                params[col] = value
        expanding: tuple[str, ...] = ()
        if isinstance(state, str):
            where.append("state = :state")
            params["state"] = state
        elif state is not None:
            where.append("state IN :states")
            params["states"] = list(state)
            expanding = ("states",)
        if labels:
            where.append(self._labels_clause([labels] if isinstance(labels, str) else list(labels), params))
        if not all_versions and entity_type not in ("task", "run", "project"):
            if project is None:
                raise StoreError(f"listing the latest {entity_type}s needs a project")
            where.append(
                f"pk IN (SELECT max(pk) FROM {TABLE} WHERE project = :project AND entity_type = :entity_type "
                "GROUP BY name)"
            )
        return " AND ".join(where), params, expanding

    def _labels_clause(self, labels: Sequence[str], params: dict[str, Any]) -> str:
        """Entities whose ``metadata.labels`` (a JSON array) holds every one of ``labels``, each an exact
        element: a label that only starts another, or the same text elsewhere in the body, is no match.
        In SQL, so that LIMIT and OFFSET page the matches. There is no index on the labels: the other
        filters (project, type, function, state) narrow the rows first."""
        if self.path is None:  # PostgreSQL: jsonb containment of an array of strings is per element
            params["labels"] = json.dumps([*labels])
            return "CAST(body AS jsonb) -> 'metadata' -> 'labels' @> CAST(:labels AS jsonb)"
        # SQLite: one EXISTS per label over json_each of the array (an object's values are no labels)
        clauses = ["json_type(body, '$.metadata.labels') = 'array'"]
        for i, label in enumerate(labels):
            params[f"label_{i}"] = label
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(body, '$.metadata.labels') AS l "
                f"WHERE l.type = 'text' AND l.value = :label_{i})"
            )
        return " AND ".join(clauses)

    @reconnecting
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
        params: dict[str, Any] = {"project": project, "entity_type": entity_type}
        where = ["project = :project", "entity_type = :entity_type"]
        expanding: list[str] = []
        for col, value in (("id", ids), ("function_id", function_ids)):
            if value is not None:
                where.append(f"{col} IN :{col}s")
                params[f"{col}s"] = list(value)
                expanding.append(f"{col}s")
        for col, scalar in (("name", name), ("function_name", function_name)):
            if scalar is not None:
                where.append(f"{col} = :{col}")
                params[col] = scalar
        statement, params = expand(f"DELETE FROM {TABLE} WHERE {' AND '.join(where)}", params, expanding)
        with self._tx(write=True) as conn:
            return conn.run(statement, params)

    @reconnecting
    def delete_project(self, project: str) -> int:
        with self._tx(write=True) as conn:
            return conn.run(f"DELETE FROM {TABLE} WHERE project = :project", {"project": project})
