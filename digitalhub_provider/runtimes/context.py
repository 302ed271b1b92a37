"""The context a handler's ``project`` works in, inside a runner.

New entities are written to the data store and *recorded* (listed in the
RunResult) instead of being written to the metadata store: the control plane
registers them, with the run's lineage, in the same transaction as the run's
final status. Reads see what the run logged first, then the metadata store
(when the job can reach it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from digitalhub_provider.config import Settings
from digitalhub_provider.errors import EntityNotFoundError, RunError
from digitalhub_provider.runtimes.contract import WRITING_FILE
from digitalhub_provider.stores.context import Context, RunOperations
from digitalhub_provider.stores.metadata.base import Entity, MetadataStore, Write


class _Overlay(MetadataStore):
    """Reads through the run's own records, then the real store; writes are refused."""

    def __init__(self, ctx: RunnerContext) -> None:
        self.ctx = ctx
        self.url = ctx.settings.metadata_url

    def _real(self) -> MetadataStore:
        return Context.metadata.fget(self.ctx)  # type: ignore[attr-defined]

    def _mine(self, project: str | None, entity_type: str) -> list[Entity]:
        return [
            r["entity"]
            for r in reversed(self.ctx.logged)
            if r["type"] == entity_type and project in (None, r["entity"]["project"])
        ]

    def write(
        self, *, create: Sequence[Write] = (), update: Sequence[Write] = (), expect: Mapping[str, str] | None = None
    ) -> None:
        for entity_type, entity in create:
            self.ctx.insert(entity_type, entity)
        if update:
            raise EntityNotFoundError("inside a run, entities can be logged but not updated")

    def get(self, project: str, entity_type: str, entity_id: str) -> Entity:
        for e in self._mine(project, entity_type):
            if e["id"] == entity_id:
                return e
        return self._real().get(project, entity_type, entity_id)

    def get_latest(self, project: str, entity_type: str, name: str) -> Entity:
        for e in self._mine(project, entity_type):
            if e["name"] == name:
                return e
        return self._real().get_latest(project, entity_type, name)

    def list(self, project: str | None, entity_type: str, **kw: Any) -> list[Entity]:
        mine = self._mine(project, entity_type)
        return mine + self._real().list(project, entity_type, **kw)

    def count(self, project: str | None, entity_type: str, **kw: Any) -> int:
        return len(self._mine(project, entity_type)) + self._real().count(project, entity_type, **kw)

    def delete(self, project: str, entity_type: str, **kw: Any) -> int:
        raise EntityNotFoundError("inside a run, entities cannot be deleted")

    def delete_project(self, project: str) -> int:
        raise EntityNotFoundError("inside a run, projects cannot be deleted")


class RunnerContext(Context):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.logged: list[dict[str, Any]] = []
        self._overlay = _Overlay(self)
        self.run_id: str | None = None  # the run being executed: the folders it writes are journaled
        self._writing: list[str] = []

    def material_url(self, project: str, entity_type: str, name: str, entity_id: str, filename: str) -> str:
        """As the store context's, and the entity's folder journaled in the run's ``writing.json``
        before anything is written there (the controller removes those folders if the run does not
        complete, whoever ends it)."""
        url = super().material_url(project, entity_type, name, entity_id, filename)
        folder = self.data_url(project, entity_type, name, entity_id, "")
        if self.run_id is not None and folder not in self._writing:
            self._writing.append(folder)
            journal = self.run_url(self.run_id, WRITING_FILE)
            self.data_store(journal).write_bytes(journal, json.dumps(self._writing).encode())
        return url

    @property
    def metadata(self) -> MetadataStore:
        return self._overlay

    @property
    def records_only(self) -> bool:
        return True

    @property
    def runs(self) -> RunOperations:
        raise RunError("a job cannot start, stop or follow runs: its caller's control plane does")

    def insert(self, entity_type: str, entity: dict[str, Any]) -> None:
        self.logged.append({"type": entity_type, "entity": entity})
