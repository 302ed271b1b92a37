"""The shape every entity shares: ``kind``, ``metadata``, ``spec``, ``status``.

Entities are plain classes holding a validated spec as a plain dictionary: a
Airflow task process builds and reads a handful of them once, and pydantic
models cost more to create (~30 ms of class and schema building per process,
measured in bench P5) than the checks they would make here. The envelope is
checked by :meth:`Entity.from_dict` (clear ``ValueError``s for an imported
YAML file or a RunResult); specs are validated per kind by pydantic models
(:mod:`digitalhub_provider.entities.specs`).

Their methods that touch stores or runs go through a *context*
(:class:`digitalhub_provider.stores.context.Context`) given to them, so that
this layer imports nothing above it: outside a run it is the process's
configured stores; inside a runner it is the run's (which records what a
handler logs instead of writing the metadata store: one writer of status).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, get_args

from digitalhub_provider.entities.keys import build_key, validate_name, validate_project_name
from digitalhub_provider.entities.specs import validate_spec
from digitalhub_provider.states import State

if TYPE_CHECKING:
    from digitalhub_provider.stores.context import Context

# cached_from: a run that reused an earlier run's outputs and results (sdk/cache.py)
RelationshipType = Literal["produced_by", "consumes", "run_of", "step_of", "cached_from"]
RELATIONSHIP_TYPES: tuple[str, ...] = get_args(RelationshipType)
T = TypeVar("T", bound="Entity")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_id() -> str:
    return uuid.uuid4().hex


def _json_copy(value: Any) -> Any:
    """A deep copy holding JSON types only (what is stored), so no caller shares the entity's dicts."""
    return json.loads(json.dumps(value, default=str))


def _expect(value: Any, types: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, types):
        raise ValueError(f"field {where!r}: expected {what}, got {type(value).__name__}")
    return value


class Relationship:
    """A lineage edge: ``{"type": "produced_by", "dest": "store://..."}``."""

    __slots__ = ("dest", "type")

    def __init__(self, type: RelationshipType | str, dest: str) -> None:
        if type not in RELATIONSHIP_TYPES:
            raise ValueError(f"relationship type {type!r}: expected one of {', '.join(RELATIONSHIP_TYPES)}")
        self.type = type
        self.dest = _expect(dest, str, "dest", "a string")

    @classmethod
    def from_dict(cls, data: Any, where: str = "relationship") -> Relationship:
        _expect(data, dict, where, "an object with type and dest")
        if "type" not in data or "dest" not in data:
            raise ValueError(f"field {where!r}: expected an object with type and dest")
        return cls(data["type"], data["dest"])

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "dest": self.dest}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Relationship) and (self.type, self.dest) == (other.type, other.dest)

    def __repr__(self) -> str:
        return f"Relationship(type={self.type!r}, dest={self.dest!r})"


class _Record:
    """Named fields as attributes, plus any others the document carries (kept as they are)."""

    FIELDS: ClassVar[dict[str, Any]] = {}  # field -> default

    def __init__(self, **values: Any) -> None:
        for name, default in self.FIELDS.items():
            setattr(self, name, values.pop(name, default))
        for name, value in values.items():
            if name.startswith("_") or hasattr(type(self), name):
                raise ValueError(f"field {name!r} of {type(self).__name__.lower()} is reserved")
            setattr(self, name, value)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set (``None`` left out), known ones first, as JSON types."""
        out = {k: v for k, v in vars(self).items() if v is not None}
        return _json_copy(out)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()})"


class Metadata(_Record):
    FIELDS: ClassVar[dict[str, Any]] = {
        "project": None, "name": None, "version": None, "description": None, "labels": None, "created": None,
        "updated": None, "embedded": True, "relationships": None,
    }  # fmt: skip
    project: str
    name: str
    version: str | None
    description: str | None
    labels: list[str] | None
    created: str | None
    updated: str | None
    embedded: bool
    relationships: list[Relationship] | None

    @classmethod
    def from_dict(cls, data: Any) -> Metadata:
        _expect(data, dict, "metadata", "an object")
        values = dict(data)
        for name in ("project", "name"):
            _expect(values.get(name), str, f"metadata.{name}", "a string")
        for name in ("version", "description", "created", "updated"):
            if values.get(name) is not None:
                values[name] = str(_expect(values[name], (str, int, float), f"metadata.{name}", "a string"))
        labels = values.get("labels")
        if labels is not None:
            _expect(labels, list, "metadata.labels", "a list of strings")
            values["labels"] = [_expect(lab, str, "metadata.labels", "a list of strings") for lab in labels]
        if values.get("embedded") is None:
            values.pop("embedded", None)
        else:
            _expect(values["embedded"], bool, "metadata.embedded", "true or false")
        rels = values.get("relationships")
        if rels is not None:
            _expect(rels, list, "metadata.relationships", "a list")
            values["relationships"] = [
                Relationship.from_dict(r, f"metadata.relationships.{i}") for i, r in enumerate(rels)
            ]
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if v is not None}
        if self.relationships is not None:
            out["relationships"] = [r.to_dict() for r in self.relationships]
        return _json_copy(out)


class Status(_Record):
    """A run's (or any entity's) status; unknown fields are kept."""

    FIELDS: ClassVar[dict[str, Any]] = {"state": None, "message": None}
    state: str | None
    message: str | None


class Entity:
    """Base of Project, Function, Workflow, Task, Run, Dataitem, Artifact, Model."""

    ENTITY_TYPE: ClassVar[str] = ""

    def __init__(
        self,
        *,
        id: str,
        name: str,
        kind: str,
        project: str,
        metadata: Metadata,
        spec: dict[str, Any] | None = None,
        status: Status | None = None,
        user: str | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.kind = kind
        self.project = project
        self.metadata = metadata
        self.spec: dict[str, Any] = spec if spec is not None else {}
        self.status = status if status is not None else Status()
        self.user = user
        self._ctx: Any = None

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
        spec_checked: bool = False,
    ) -> T:
        """A new, validated entity (not saved). ``spec_checked``: the caller gives the spec in the form
        its model would return (see :func:`~digitalhub_provider.entities.specs.plain_run_spec`)."""
        validate_project_name(project)
        if cls.ENTITY_TYPE not in ("task", "run"):
            validate_name(name)
        clean = dict(spec or {}) if spec_checked else validate_spec(cls.ENTITY_TYPE, kind, spec)
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
                labels=list(labels) if labels else labels,
                created=stamp,
                updated=stamp,
                embedded=embedded,
                relationships=[Relationship.from_dict(r) for r in relationships] if relationships else None,
            ),
            spec=clean,
            status=Status(**(status or {"state": State.CREATED.value})),
        )

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], ctx: Context | None = None) -> T:
        """An entity from its stored (or imported) dictionary; ``ValueError`` naming the field when
        the envelope is malformed. Unknown top-level fields (``key``) are ignored."""
        _expect(data, dict, "entity", "an object")
        for name in ("id", "name", "kind", "project"):
            _expect(data.get(name), str, name, "a string")
        spec = data.get("spec")
        status = data.get("status")
        user = data.get("user")
        entity = cls(
            id=data["id"],
            name=data["name"],
            kind=data["kind"],
            project=data["project"],
            metadata=Metadata.from_dict(data.get("metadata")),
            spec=dict(_expect(spec, dict, "spec", "an object")) if spec is not None else {},
            status=Status(**_expect(status, dict, "status", "an object")) if status is not None else Status(),
            user=_expect(user, str, "user", "a string") if user is not None else None,
        )
        entity._ctx = ctx
        return entity

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "kind": self.kind, "project": self.project}
        out["metadata"] = self.metadata.to_dict()
        out["spec"] = _json_copy(self.spec)
        out["status"] = self.status.to_dict()
        if self.user is not None:
            out["user"] = self.user
        if self.ENTITY_TYPE != "project":
            out["key"] = self.key
        return out

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # -- identity -------------------------------------------------------------------
    @property
    def key(self) -> str:
        return build_key(self.project, self.ENTITY_TYPE, self.kind, self.name, self.id)

    @property
    def ctx(self) -> Context:
        if self._ctx is not None:
            return self._ctx
        import digitalhub_provider.config as config  # loaded by now: every process reads its settings first

        if config.context_factory is None:
            raise RuntimeError("no context: import digitalhub_provider.stores.context (dh.* does) first")
        return config.context_factory()

    def add_relationship(self, rel_type: RelationshipType, dest: str) -> None:
        rels = list(self.metadata.relationships or [])
        if not any(r.type == rel_type and r.dest == dest for r in rels):
            rels.append(Relationship(rel_type, dest))
        self.metadata.relationships = rels

    # -- persistence ------------------------------------------------------------------
    def save(self, update: bool = False) -> Entity:
        """Save: a new record, or with ``update=True`` the stored one (a changed spec
        becomes a new version, as in DigitalHub)."""
        crud = self.ctx.crud
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
