"""The stores a process works with, built from :class:`Settings`.

``get_context()`` gives the process-wide context (environment variables or
the embedded default); ``use_context()`` swaps it for a block (the Airflow
hook does this with the settings of a connection).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from digitalhub_provider.config import Settings
from digitalhub_provider.stores.data import DataStore, join_url, open_data_store, scheme_of
from digitalhub_provider.stores.metadata import MetadataStore, open_metadata_store


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
        return self.data_url(project, entity_type, name, entity_id, filename)

    def run_url(self, run_id: str, filename: str) -> str:
        return self.data_url("runs", run_id, filename)

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
        return override  # type: ignore[no-any-return]
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
