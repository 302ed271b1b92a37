"""The stores a process works with, built from :class:`Settings`, and what entities do through them.

``get_context()`` gives the process-wide context (environment variables or
the embedded default); ``use_context()`` swaps it for a block (the Airflow
hook does this with the settings of a connection).

Entities hold their context and act through it: ``crud`` (save, get, list,
log), ``tables`` (DataFrames) and ``runs`` (start, stop, read the log of a
run). The entities layer imports nothing above it; ``runs`` are the control
plane's (:mod:`digitalhub_provider.sdk.runs` installs them when it loads), so a
job, which never loads the control plane, cannot start runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import digitalhub_provider.config as config
from digitalhub_provider.config import Settings
from digitalhub_provider.errors import EntityError, RunError
from digitalhub_provider.names import ENTITY_TYPES, validate_id, validate_name, validate_project_name
from digitalhub_provider.stores.data import DataStore, join_url, open_data_store, scheme_of
from digitalhub_provider.stores.metadata import MetadataStore, open_metadata_store

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable


class RunOperations(Protocol):
    """What entities ask of the control plane: ``function.run()``, ``run.stop()``, ``run.logs()``, and
    that ``run.refresh()`` finishes a run nobody follows any more."""

    def run_executable(self, fn: Executable, action: str | None = None, wait: bool = True, **kwargs: Any) -> Run: ...

    def stop_run(self, run: Run) -> Run: ...

    def read_logs(self, run: Run) -> str: ...

    def reconcile_run(self, run: Run) -> Run: ...


_run_operations: RunOperations | None = None


def install_run_operations(operations: RunOperations) -> None:
    global _run_operations
    _run_operations = operations


class Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._metadata: MetadataStore | None = None
        self._data: dict[str, DataStore] = {}
        self._lock = threading.Lock()

    @property
    def metadata(self) -> MetadataStore:
        if self._metadata is None:
            self._metadata = open_metadata_store(self.settings.metadata_url)
        return self._metadata

    def data_store(self, url: str | None = None) -> DataStore:
        scheme = scheme_of(url or self.settings.data_url)
        with self._lock:
            if scheme not in self._data:
                self._data[scheme] = open_data_store(url or self.settings.data_url, self.settings)
            return self._data[scheme]

    @property
    def data_root(self) -> str:
        return self.settings.data_url

    def data_url(self, *parts: str) -> str:
        return join_url(self.data_root, *parts)

    def material_url(self, project: str, entity_type: str, name: str, entity_id: str, filename: str) -> str:
        """Where an entity's files go. Every name in it is checked here, the one place names become
        paths: a name that is not DigitalHub's fails before any file is written."""
        validate_project_name(project)
        if entity_type not in ENTITY_TYPES:
            raise EntityError(f"unknown entity type {entity_type!r}")
        validate_name(name, f"{entity_type} name")
        validate_id(entity_id)
        return self.data_url(project, entity_type, name, entity_id, filename)

    def run_url(self, run_id: str, filename: str) -> str:
        validate_id(run_id)
        return self.data_url("runs", run_id, filename)

    # -- what entities do through their context ------------------------------------------
    @property
    def crud(self) -> ModuleType:
        from digitalhub_provider.stores import crud

        return crud

    @property
    def tables(self) -> ModuleType:
        from digitalhub_provider.stores.data import tables  # pyarrow and pandas load on first use

        return tables

    @property
    def runs(self) -> RunOperations:
        if _run_operations is None:
            raise RunError("runs are started by the control plane: import digitalhub_provider.sdk (dh.*) first")
        return _run_operations

    # -- persistence of new entities (the runner's context records them instead) --------
    def insert(self, entity_type: str, entity: dict[str, Any]) -> None:
        self.metadata.write(create=[(entity_type, entity)])

    @property
    def records_only(self) -> bool:
        """True inside a runner: entities are listed in the RunResult, not written."""
        return False


_context: Context | None = None
_local = threading.local()


def get_context() -> Context:
    override = getattr(_local, "context", None)
    if override is not None:
        return override
    global _context
    if _context is None:
        _context = Context(Settings.from_env())
    return _context


def reset_context() -> None:
    """Forget the process-wide context (tests, or after changing the environment)."""
    global _context
    _context = None


@contextmanager
def use_context(ctx: Context) -> Iterator[Context]:
    previous = getattr(_local, "context", None)
    _local.context = ctx
    try:
        yield ctx
    finally:
        _local.context = previous


# Entities made without a context use the process-wide one.
config.context_factory = get_context
