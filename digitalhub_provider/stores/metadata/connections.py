"""How the SQL metadata store talks to its database: one transaction at a time, statements as
text with named parameters (``:name``).

Two drivers behind one small interface (:class:`Transaction`):

* **SQLite** through the standard library's ``sqlite3``, one connection per process and thread,
  kept open. A task process opens the store once and issues a handful of statements; through a
  SQLAlchemy engine the same work cost ~8 ms of CPU (engine and dialect set-up, pool checkout and
  execution context per statement) against ~2 ms with the bare driver, measured in a forked
  Airflow task. WAL mode, a 60 s busy timeout, and ``BEGIN IMMEDIATE`` for writes, so that
  processes saving at once queue up instead of failing. A read is one statement (atomic on its
  own), so it runs without BEGIN/COMMIT.
* **Any other database** (PostgreSQL) through a SQLAlchemy engine and :func:`sqlalchemy.text`:
  its pool, reconnects and URL handling are worth their cost for a server.

Alembic migrates both through a SQLAlchemy engine (:func:`engine`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from digitalhub_provider.errors import EntityExistsError, StoreError

if TYPE_CHECKING:
    from sqlalchemy import Engine, TextClause

Params = dict[str, Any]
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=60000", "PRAGMA synchronous=NORMAL",
                  "PRAGMA foreign_keys=ON")  # fmt: skip
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_local = threading.local()
_abandoned: list[sqlite3.Connection] = []  # inherited through fork: never used, never closed (see _sqlite)
_texts: dict[str, TextClause] = {}


class Transaction(Protocol):
    def rows(self, statement: str, params: Params) -> list[tuple[Any, ...]]: ...

    def run(self, statement: str, params: Params) -> int:
        """Execute ``statement``; the number of rows it changed."""
        ...

    def run_many(self, statement: str, params: Sequence[Params]) -> None: ...


def expand(statement: str, params: Params, lists: Sequence[str]) -> tuple[str, Params]:
    """``IN :name`` for a list parameter becomes one placeholder per value (``IN (NULL)``, true for
    no row, when the list is empty): neither driver binds a list to one placeholder."""
    out = dict(params)
    for name in lists:
        values = list(out.pop(name))
        names = [f"{name}_{i}" for i in range(len(values))]
        out.update(zip(names, values, strict=True))
        statement = statement.replace(f"IN :{name}", f"IN ({', '.join(':' + n for n in names) or 'NULL'})")
    return statement, out


def sqlite_path(url: str) -> str:
    """The database file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    path = rest[1:] if rest.startswith("/") else rest
    if not path or path == ":memory:" or "?" in path:
        raise StoreError(f"the SQLite metadata store must be a file (sqlite:///path/to/file.db), not {url!r}")
    return path


# -- SQLite ----------------------------------------------------------------------------------------
class _SQLiteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, statement: str, params: Params) -> list[tuple[Any, ...]]:
        return self.conn.execute(statement, params).fetchall()

    def run(self, statement: str, params: Params) -> int:
        return self.conn.execute(statement, params).rowcount

    def run_many(self, statement: str, params: Sequence[Params]) -> None:
        self.conn.executemany(statement, params)


def _sqlite(path: str) -> sqlite3.Connection:
    """This thread's connection to ``path``, opened on first use. A connection this thread
    inherited through ``fork`` belongs to the parent: SQLite must not use it (nor close it) here."""
    if getattr(_local, "pid", None) != os.getpid():
        _abandoned.extend(getattr(_local, "conns", {}).values())
        _local.conns, _local.pid = {}, os.getpid()
    conn: sqlite3.Connection | None = _local.conns.get(path)
    if conn is None:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=60, isolation_level=None)  # BEGIN/COMMIT are ours
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the metadata store {path}: {exc}") from None
        _local.conns[path] = conn
    return conn


@contextmanager
def sqlite_transaction(path: str, write: bool, where: str) -> Iterator[Transaction]:
    try:
        conn = _sqlite(path)
        if not write:
            yield _SQLiteTransaction(conn)
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SQLiteTransaction(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.IntegrityError as exc:
        raise EntityExistsError(f"already in the metadata store: {exc}".strip()) from None
    except sqlite3.Error as exc:
        raise StoreError(f"metadata store {where} failed: {exc}") from None


def sqlite_revision(path: str, where: str) -> str | None:
    """The schema's Alembic revision, None before the first migration."""
    try:
        row = _sqlite(path).execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise StoreError(f"cannot open the metadata store {where}: {exc}") from None
    return str(row[0]) if row else None


# -- SQLAlchemy ------------------------------------------------------------------------------------
def _text(statement: str) -> TextClause:
    clause = _texts.get(statement)
    if clause is None:
        from sqlalchemy import text

        clause = _texts[statement] = text(statement)
    return clause


class _EngineTransaction:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rows(self, statement: str, params: Params) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(_text(statement), params)]

    def run(self, statement: str, params: Params) -> int:
        return int(self.conn.execute(_text(statement), params).rowcount)

    def run_many(self, statement: str, params: Sequence[Params]) -> None:
        self.conn.execute(_text(statement), list(params))


def engine(url: str) -> Engine:
    """The process's SQLAlchemy engine for ``url`` (SQLite: migrations only)."""
    from sqlalchemy import create_engine, event

    with _engines_lock:
        eng = _engines.get(url)
        if eng is None:
            if url.startswith("sqlite"):
                Path(sqlite_path(url)).parent.mkdir(parents=True, exist_ok=True)
                eng = create_engine(url, connect_args={"timeout": 60})

                def pragmas(dbapi_conn: Any, _record: Any) -> None:
                    for pragma in SQLITE_PRAGMAS:
                        dbapi_conn.execute(pragma)

                event.listen(eng, "connect", pragmas)
            else:
                # No pre-ping (a round trip before every statement, ~15% of a page read): a worker's task
                # process lives for one task, and a longer-lived process gets a fresh connection after 5
                # minutes, before a server or proxy idle timeout could have cut it.
                eng = create_engine(url, pool_recycle=300)
            _engines[url] = eng
        return eng


class Disconnected(StoreError):
    """The server closed a pooled connection (it restarted, or a proxy cut it): nothing was committed,
    the pool has dropped its connections, and the same call may be made again."""


@contextmanager
def engine_transaction(url: str, where: str) -> Iterator[Transaction]:
    from sqlalchemy.exc import IntegrityError, OperationalError

    try:
        with engine(url).connect() as conn, conn.begin():
            yield _EngineTransaction(conn)
    except OperationalError as exc:
        if exc.connection_invalidated:
            raise Disconnected(f"metadata store {where}: the connection was lost: {exc.orig}") from None
        raise StoreError(f"metadata store {where} failed: {exc.orig}") from None
    except IntegrityError as exc:
        raise EntityExistsError(f"already in the metadata store: {exc.orig}".strip()) from None


def engine_revision(url: str) -> str | None:
    """The schema's Alembic revision, None before the first migration (errors are the caller's)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    with engine(url).connect() as conn:
        try:
            value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            conn.rollback()
            return None
    return str(value) if value is not None else None
