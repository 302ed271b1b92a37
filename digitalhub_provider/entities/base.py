"""The shape every entity shares: ``kind``, ``metadata``, ``spec``, ``status``.

Entities are pydantic models holding a validated spec as a plain dictionary.
Their methods that touch stores go through a *context*
(:class:`digitalhub_provider.sdk.context.Context`), imported lazily so that
this layer stays free of store code: outside a run it is the process's
configured stores; inside a runner it is the run's (which records what a
handler logs instead of writing the metadata store: one writer of status).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from digitalhub_provider.entities.keys import build_key, validate_name, validate_project_name
from digitalhub_provider.entities.specs import validate_spec

if TYPE_CHECKING:
    from digitalhub_provider.sdk.context import Context

RelationshipType = Literal["produced_by", "consumes", "run_of", "step_of"]
T = TypeVar("T", bound="Entity")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_id() -> str:
    return uuid.uuid4().hex


class Relationship(BaseModel):
    model_config = ConfigDict(defer_build=True)
    type: RelationshipType
    dest: str


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)
    project: str
    name: str
    version: str | None = None
    description: str | None = None
    labels: list[str] | None = None
    created: str | None = None
    updated: str | None = None
    embedded: bool = True
    relationships: list[Relationship] | None = None


class Status(BaseModel):
    """A run's (or any entity's) status; unknown fields are kept."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    state: str | None = None
    message: str | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)


class Entity(BaseModel):
    """Base of Project, Function, Workflow, Task, Run, Dataitem, Artifact, Model."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    ENTITY_TYPE: ClassVar[str] = ""

    id: str
    name: str
    kind: str
    project: str
    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)
    status: Status = Field(default_factory=Status)
    user: str | None = None
    _ctx: Any = PrivateAttr(default=None)

    # -- construction -----------------------------------------------------------
    @classmethod
    def build(
        cls: type[T],
        *,
        project: str,
        name: str,
        kind: str,
        spec: dict[str, Any] | None = None,
        uuid: str | None = None,
        description: str | None = None,
        labels: list[str] | None = None,
        embedded: bool = True,
        relationships: list[dict[str, str]] | None = None,
        status: dict[str, Any] | None = None,
    ) -> T:
        """A new, validated entity (not saved)."""
        validate_project_name(project)
        if cls.ENTITY_TYPE not in ("task", "run"):
            validate_name(name)
        clean = validate_spec(cls.ENTITY_TYPE, kind, spec)
        entity_id = uuid or new_id()
        stamp = now_iso()
        return cls(
            id=entity_id,
            name=name if cls.ENTITY_TYPE not in ("task", "run") else entity_id,
            kind=kind,
            project=project,
            metadata=Metadata(
                project=project,
                name=name if cls.ENTITY_TYPE not in ("task", "run") else entity_id,
                version=entity_id if cls.ENTITY_TYPE not in ("task", "run", "project") else None,
                description=description,
                labels=labels,
                created=stamp,
                updated=stamp,
                embedded=embedded,
                relationships=[Relationship.model_validate(r) for r in relationships] if relationships else None,
            ),
            spec=clean,
            status=Status(**(status or {"state": "CREATED"})),
        )

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], ctx: Context | None = None) -> T:
        entity = cls.model_validate({k: v for k, v in data.items() if k != "key"})
        entity._ctx = ctx
        return entity

    def to_dict(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", exclude_none=True)
        out["metadata"] = self.metadata.model_dump(mode="json", exclude_none=True)
        out["status"] = self.status.model_dump(mode="json", exclude_none=True)
        if self.ENTITY_TYPE != "project":
            out["key"] = self.key
        return out

    # -- identity -------------------------------------------------------------------
    @property
    def key(self) -> str:
        return build_key(self.project, self.ENTITY_TYPE, self.kind, self.name, self.id)

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            from digitalhub_provider.sdk.context import get_context

            return get_context()
        return self._ctx  # type: ignore[no-any-return]

    def add_relationship(self, rel_type: RelationshipType, dest: str) -> None:
        rels = list(self.metadata.relationships or [])
        if not any(r.type == rel_type and r.dest == dest for r in rels):
            rels.append(Relationship(type=rel_type, dest=dest))
        self.metadata.relationships = rels

    # -- persistence ------------------------------------------------------------------
    def save(self, update: bool = False) -> Entity:
        """Save: a new record, or with ``update=True`` the stored one (a changed spec
        becomes a new version, as in DigitalHub)."""
        from digitalhub_provider.sdk import crud

        if update:
            return crud.update_entity(self, ctx=self._ctx)
        return crud.create_entity(self, ctx=self._ctx)

    def refresh(self) -> Entity:
        fresh = self.ctx.metadata.get(self.project, self.ENTITY_TYPE, self.id)
        updated = type(self).from_dict(fresh, self._ctx)
        for field in ("metadata", "spec", "status", "kind", "name"):
            setattr(self, field, getattr(updated, field))
        return self

    def export(self, filename: str | Path | None = None) -> str:
        """Write the entity as YAML and return the file's path."""
        import yaml

        path = Path(filename or f"{self.ENTITY_TYPE}-{self.name}-{self.id}.yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return str(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key if self.ENTITY_TYPE != 'project' else self.name!r})"
