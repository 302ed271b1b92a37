"""Dataitem, Artifact and Model: entities whose ``spec.path`` points at data."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from digitalhub_provider.entities.base import Entity
from digitalhub_provider.errors import EntityError


class Material(Entity):
    @property
    def path(self) -> str:
        return str(self.spec["path"])

    def download(self, destination: str | Path | None = None, overwrite: bool = False) -> str:
        """Copy the data to a local file (streamed) and return its path."""
        filename = Path(self.path.rstrip("/")).name or self.name
        dest = Path(destination) if destination else Path(tempfile.mkdtemp(prefix="dh-")) / filename
        if dest.is_dir():
            dest = dest / filename
        if dest.exists() and not overwrite:
            raise EntityError(f"{dest} already exists: pass overwrite=True to replace it")
        self.ctx.data_store(self.path).download(self.path, dest)
        return str(dest)

    def upload(self, source: str | Path) -> None:
        """Replace the data with a local file."""
        self.ctx.data_store(self.path).upload(source, self.path)


class Dataitem(Material):
    ENTITY_TYPE = "dataitem"

    def as_df(self, file_format: str | None = None, **kwargs: Any) -> Any:
        """The data as a pandas DataFrame (Parquet or CSV, by extension or ``file_format``)."""
        return self.ctx.tables.read_df(self.ctx, self.path, file_format=file_format, **kwargs)

    def write_df(self, df: Any, **kwargs: Any) -> str:
        if self.ctx.data_store(self.path).read_only:
            raise EntityError(f"dataitem {self.name!r} reads from {self.path!r}, a read-only source")
        return str(self.ctx.tables.write_df(self.ctx, df, self.path, **kwargs))


class Artifact(Material):
    ENTITY_TYPE = "artifact"


class Model(Material):
    ENTITY_TYPE = "model"
