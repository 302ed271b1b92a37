"""Metadata store on SQLAlchemy: a SQLite file by default, PostgreSQL by URL.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that several processes saving at once queue up instead
of failing. The schema is created and upgraded by Alembic the first time a
process opens a store, under a lock so that two processes don't race.

The statements are SQL text with bound parameters (:func:`sqlalchemy.text`), not
expression-language constructs: a task process lives for one run and issues each
statement once, and compiling a Core construct (plus its cache key) cost ~0.5 ms
per statement per process, most of the store's share of a task. Column names in
the text come from fixed lists here, never from arguments; every value is bound.
The :mod:`.schema` table stays the definition Alembic migrates from.
"""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, String, TextClause, bindparam, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from digitalhub_provider.entities.keys import is_key, parse_key
from digitalhub_provider.errors import EntityExistsError, EntityNotFoundError, StoreError
from digitalhub_provider.stores.metadata.base import Entity, MetadataStore, Write

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0001"
TABLE = "dh_entities"  # schema.entities
COLUMNS = ("id", "project", "entity_type", "kind", "name", "state", "function_name", "function_id", "body")
UPDATED = ("kind", "state", "body", "function_name", "function_id")
FILTERS = ("name", "kind", "function_name")  # list() filters by equality on these columns
_engines: dict[str, Engine] = {}
_ready: set[str] = set()
_lock = threading.Lock()
_statements: dict[str, TextClause] = {}


def _sql(statement: str, *expanding: str) -> TextClause:
    """The text construct for a statement (built once per process); ``expanding`` names IN-list parameters
    (of strings: an empty list renders as an empty set of that type)."""
    clause = _statements.get(statement)
    if clause is None:
        clause = text(statement)
        if expanding:
            clause = clause.bindparams(*(bindparam(name, expanding=True, type_=String) for name in expanding))
        _statements[statement] = clause
    return clause


INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
UPDATE = f"UPDATE {TABLE} SET {', '.join(f'{c} = :{c}' for c in UPDATED)} WHERE entity_type = :entity_type AND id = :id"
GET = f"SELECT body FROM {TABLE} WHERE entity_type = :entity_type AND id = :id AND project = :project"
GET_LATEST = (
    f"SELECT body FROM {TABLE} WHERE project = :project AND entity_type = :entity_type AND name = :name "
    "ORDER BY pk DESC LIMIT 1"
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("dh_write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _engine(url: str) -> Engine:
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite":
                if parsed.database and parsed.database != ":memory:":
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                eng = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
                event.listen(eng, "connect", _sqlite_pragmas)
                event.listen(eng, "begin", _sqlite_begin)
            else:
                # No pre-ping (a round trip before every statement, ~15% of a page read): a worker's task
                # process lives for one task, and a longer-lived process gets a fresh connection after 5
                # minutes, before a server or proxy idle timeout could have cut it.
                eng = create_engine(url, pool_recycle=300)
            _engines[url] = eng
        return eng


def _function_ref(entity: Entity) -> tuple[str | None, str | None]:
    """The function (or workflow) a task or run belongs to, as (name, id)."""
    spec = entity.get("spec") or {}
    ref = spec.get("function") or spec.get("workflow")
    if not is_key(ref):
        return None, None
    key = parse_key(ref)
    return key.name, key.id


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


def _revision(conn: Connection) -> str | None:
    """The schema's Alembic revision, or None when there is no ``alembic_version`` table yet."""
    try:
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        conn.rollback()
        return None
    return str(value) if value is not None else None


class SQLMetadataStore(MetadataStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if url not in _ready:
            self._migrate()
            _ready.add(url)

    # -- schema ---------------------------------------------------------------
    def _migrate(self) -> None:
        """Bring the schema to HEAD. A store already at HEAD (every open but the first) costs one
        SELECT: Alembic (~0.2 s to import) and the migration lock are only taken when it is not."""
        try:
            with self.engine.connect() as conn:  # an unreachable store fails here, with a clear error
                if _revision(conn) == HEAD:
                    return
            with self._migration_lock(), self.engine.connect() as conn:
                from alembic.runtime.migration import MigrationContext

                if MigrationContext.configure(conn).get_current_revision() == HEAD:
                    return
                from alembic import command
                from alembic.config import Config

                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the metadata store {self._safe_url}: {exc.__class__.__name__}: {exc}"
            ) from None

    @property
    def _safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.is_sqlite:
            db = make_url(self.url).database
            if db and db != ":memory:":
                with open(f"{db}.migrate.lock", "a") as fh:
                    fcntl.flock(fh, fcntl.LOCK_EX)
                    try:
                        yield
                    finally:
                        fcntl.flock(fh, fcntl.LOCK_UN)
                return
            yield
            return
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(74656)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(74656)"))
                conn.commit()

    # -- transactions -----------------------------------------------------------
    @contextmanager
    def _tx(self, write: bool) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                if write:
                    conn = conn.execution_options(dh_write=True)
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreError(f"metadata store {self._safe_url} failed: {exc.orig}") from None
        except IntegrityError as exc:
            raise EntityExistsError(f"already in the metadata store: {exc.orig}".strip()) from None

    # -- interface ---------------------------------------------------------------
    def write(self, *, create: Sequence[Write] = (), update: Sequence[Write] = ()) -> None:
        with self._tx(write=True) as conn:
            if create:
                conn.execute(_sql(INSERT), [_row(t, e) for t, e in create])
            for entity_type, entity in update:
                row = _row(entity_type, entity)
                res = conn.execute(_sql(UPDATE), {k: row[k] for k in ("entity_type", "id", *UPDATED)})
                if res.rowcount == 0:
                    raise EntityNotFoundError(
                        f"{entity_type} {entity['id']!r} does not exist in project {entity['project']!r}"
                    )

    def get(self, project: str, entity_type: str, entity_id: str) -> Entity:
        with self._tx(write=False) as conn:
            body = conn.execute(_sql(GET), {"entity_type": entity_type, "id": entity_id, "project": project}).scalar()
        if body is None:
            raise EntityNotFoundError(f"{entity_type} with id {entity_id!r} not found in project {project!r}")
        return json.loads(body)  # type: ignore[no-any-return]

    def get_latest(self, project: str, entity_type: str, name: str) -> Entity:
        with self._tx(write=False) as conn:
            body = conn.execute(
                _sql(GET_LATEST), {"project": project, "entity_type": entity_type, "name": name}
            ).scalar()
        if body is None:
            raise EntityNotFoundError(f"{entity_type} {name!r} not found in project {project!r}")
        return json.loads(body)  # type: ignore[no-any-return]

    def list(
        self,
        project: str,
        entity_type: str,
        *,
        name: str | None = None,
        kind: str | None = None,
        state: str | Sequence[str] | None = None,
        function_name: str | None = None,
        all_versions: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Entity]:
        params: dict[str, Any] = {"project": project, "entity_type": entity_type}
        where = ["project = :project", "entity_type = :entity_type"]
        for col, value in zip(FILTERS, (name, kind, function_name), strict=True):
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
        if not all_versions and entity_type not in ("task", "run", "project"):
            where.append(
                f"pk IN (SELECT max(pk) FROM {TABLE} WHERE project = :project AND entity_type = :entity_type "
                "GROUP BY name)"
            )
        query = f"SELECT body FROM {TABLE} WHERE {' AND '.join(where)} ORDER BY pk DESC"
        if limit is not None:
            query += " LIMIT :limit"
            params["limit"] = limit
        elif offset:
            query += " LIMIT -1" if self.is_sqlite else ""  # SQLite has no OFFSET without LIMIT
        if offset:
            query += " OFFSET :offset"
            params["offset"] = offset
        with self._tx(write=False) as conn:
            return [json.loads(b) for b in conn.execute(_sql(query, *expanding), params).scalars()]

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
        with self._tx(write=True) as conn:
            res = conn.execute(_sql(f"DELETE FROM {TABLE} WHERE {' AND '.join(where)}", *expanding), params)
            return res.rowcount  # type: ignore[attr-defined,no-any-return]

    def delete_project(self, project: str) -> int:
        with self._tx(write=True) as conn:
            res = conn.execute(_sql(f"DELETE FROM {TABLE} WHERE project = :project"), {"project": project})
            return res.rowcount  # type: ignore[attr-defined,no-any-return]
