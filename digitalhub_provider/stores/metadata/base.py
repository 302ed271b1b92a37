"""The metadata store interface: entities as dictionaries, keyed by type and id.

One implementation today (:mod:`.sql`, SQLite or PostgreSQL); a REST client
for a DigitalHub Core server would be a second one behind the same methods.
Ordering is insertion order: the latest version of a name is the one written
last, whatever the clocks of the writers say.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

Entity = dict[str, Any]
Write = tuple[str, Entity]  # (entity type, entity)


class MetadataStore(ABC):
    url: str

    @abstractmethod
    def write(
        self, *, create: Sequence[Write] = (), update: Sequence[Write] = (), expect: Mapping[str, str] | None = None
    ) -> None:
        """Create and update entities in one transaction: all or nothing.

        ``expect`` maps the id of an updated entity to the state it must still have in the store;
        when it has another, nothing is written and :class:`StateChangedError` names both."""

    @abstractmethod
    def get(self, project: str, entity_type: str, entity_id: str) -> Entity:
        """The entity with that id; :class:`EntityNotFoundError` if there is none."""

    @abstractmethod
    def get_latest(self, project: str, entity_type: str, name: str) -> Entity:
        """The latest version of ``name``; :class:`EntityNotFoundError` if there is none."""

    @abstractmethod
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
        """Newest first; the latest version of each name unless ``all_versions``; ``project`` None lists
        every project's (projects, tasks and runs only). ``function_name`` and
        ``function_id`` select the tasks and runs of a function (or workflow) and of one version of it;
        ``labels`` the entities whose ``metadata.labels`` hold every one of them (exact strings)."""

    @abstractmethod
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
        """How many entities :meth:`list` would give with the same filters and no limit."""

    @abstractmethod
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
        """Delete the matching entities and return how many went."""

    @abstractmethod
    def delete_project(self, project: str) -> int:
        """Delete a project and everything in it."""
