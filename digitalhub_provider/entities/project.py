"""Project: the SDK context through which entities are created and read.

Methods have the seed's names (``new_function``, ``get_dataitem``,
``log_artifact``, ...). Inside a running handler the project is bound to the
run's context, so what it logs is registered by the control plane with the
run's lineage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digitalhub_provider.entities.base import Entity
from digitalhub_provider.entities.executable import Function, Run, Workflow
from digitalhub_provider.entities.material import Artifact, Dataitem, Model


class Project(Entity):
    ENTITY_TYPE = "project"

    def _crud(self) -> Any:
        return self.ctx.crud

    def _new(self, cls: type[Entity], name: str, kind: str, **kwargs: Any) -> Any:
        return self._crud().new_entity(cls, project=self.name, name=name, kind=kind, ctx=self._ctx, **kwargs)

    def _get(self, cls: type[Entity], identifier: str | None = None, **kwargs: Any) -> Any:
        return self._crud().get_entity(cls, identifier, project=self.name, ctx=self._ctx, **kwargs)

    def _list(self, cls: type[Entity], **kwargs: Any) -> Any:
        return self._crud().list_entities(cls, self.name, ctx=self._ctx, **kwargs)

    def _delete(self, cls: type[Entity], identifier: str | None = None, **kwargs: Any) -> Any:
        return self._crud().delete_entity(cls, identifier, project=self.name, ctx=self._ctx, **kwargs)

    # functions
    def new_function(self, name: str, kind: str = "python", **kwargs: Any) -> Function:
        return self._new(Function, name, kind, **kwargs)

    def get_function(self, identifier: str | None = None, **kwargs: Any) -> Function:
        return self._get(Function, identifier, **kwargs)

    def list_functions(self, **kwargs: Any) -> list[Function]:
        return self._list(Function, **kwargs)

    def delete_function(self, identifier: str | None = None, **kwargs: Any) -> int:
        return self._delete(Function, identifier, **kwargs)

    # workflows
    def new_workflow(self, name: str, kind: str = "kfp", **kwargs: Any) -> Workflow:
        return self._new(Workflow, name, kind, **kwargs)

    def get_workflow(self, identifier: str | None = None, **kwargs: Any) -> Workflow:
        return self._get(Workflow, identifier, **kwargs)

    def list_workflows(self, **kwargs: Any) -> list[Workflow]:
        return self._list(Workflow, **kwargs)

    # dataitems
    def new_dataitem(self, name: str, kind: str = "dataitem", path: str | None = None, **kwargs: Any) -> Dataitem:
        """Register a dataitem; with an ``http(s)://`` path it is a read-only source."""
        return self._new(Dataitem, name, kind, path=path, **kwargs)

    def log_dataitem(
        self, name: str, kind: str = "table", data: Any = None, source: str | Path | None = None, **kwargs: Any
    ) -> Dataitem:
        """Store a DataFrame (``data``) or a local file (``source``) as a new dataitem."""
        return self._crud().log_material(
            Dataitem, self.name, name, kind, data=data, source=source, ctx=self._ctx, **kwargs
        )

    def get_dataitem(self, identifier: str | None = None, **kwargs: Any) -> Dataitem:
        return self._get(Dataitem, identifier, **kwargs)

    def list_dataitems(self, **kwargs: Any) -> list[Dataitem]:
        return self._list(Dataitem, **kwargs)

    # artifacts
    def new_artifact(self, name: str, kind: str = "artifact", path: str | None = None, **kwargs: Any) -> Artifact:
        return self._new(Artifact, name, kind, path=path, **kwargs)

    def log_artifact(
        self,
        name: str,
        kind: str = "artifact",
        source_path: str | Path | None = None,
        source: str | Path | None = None,
        **kwargs: Any,
    ) -> Artifact:
        """Upload a local file as a new artifact (``source_path``, or ``source`` as the current SDK names it)."""
        return self._crud().log_material(
            Artifact, self.name, name, kind, source=source_path or source, ctx=self._ctx, **kwargs
        )

    def get_artifact(self, identifier: str | None = None, **kwargs: Any) -> Artifact:
        return self._get(Artifact, identifier, **kwargs)

    def list_artifacts(self, **kwargs: Any) -> list[Artifact]:
        return self._list(Artifact, **kwargs)

    # models
    def log_model(
        self,
        name: str,
        kind: str = "model",
        source_path: str | Path | None = None,
        source: str | Path | None = None,
        **kwargs: Any,
    ) -> Model:
        return self._crud().log_material(
            Model, self.name, name, kind, source=source_path or source, ctx=self._ctx, **kwargs
        )

    def get_model(self, identifier: str | None = None, **kwargs: Any) -> Model:
        return self._get(Model, identifier, **kwargs)

    def list_models(self, **kwargs: Any) -> list[Model]:
        return self._list(Model, **kwargs)

    # runs
    def get_run(self, identifier: str | None = None, **kwargs: Any) -> Run:
        return self._get(Run, identifier, **kwargs)

    def list_runs(self, **kwargs: Any) -> list[Run]:
        return self._list(Run, **kwargs)
