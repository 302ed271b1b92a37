"""The domain: DigitalHub's entities, their keys and validated specs."""

from __future__ import annotations

from digitalhub_provider.entities.base import Entity, Metadata, Relationship, Status
from digitalhub_provider.entities.executable import Function, Run, Task, Workflow
from digitalhub_provider.entities.material import Artifact, Dataitem, Model
from digitalhub_provider.entities.project import Project
from digitalhub_provider.states import RunKind, State

ENTITY_CLASSES: dict[str, type[Entity]] = {
    cls.ENTITY_TYPE: cls for cls in (Project, Function, Workflow, Task, Run, Dataitem, Artifact, Model)
}

__all__ = [
    "ENTITY_CLASSES",
    "Artifact",
    "Dataitem",
    "Entity",
    "Function",
    "Metadata",
    "Model",
    "Project",
    "Relationship",
    "Run",
    "RunKind",
    "State",
    "Status",
    "Task",
    "Workflow",
]
