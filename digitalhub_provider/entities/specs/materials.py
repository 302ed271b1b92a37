"""Specs of dataitems, artifacts, models and projects."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from digitalhub_provider.entities.specs.base import Spec


class DataitemSpec(Spec):
    model_config = ConfigDict(extra="allow")
    path: str
    src_path: str | None = None
    schema_: dict[str, Any] | None = None


class ArtifactSpec(Spec):
    model_config = ConfigDict(extra="allow")
    path: str
    src_path: str | None = None


class ModelSpec(Spec):
    model_config = ConfigDict(extra="allow")
    path: str
    src_path: str | None = None
    framework: str | None = None
    algorithm: str | None = None
    base_model: str | None = None
    parameters: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None


class ProjectSpec(Spec):
    model_config = ConfigDict(extra="allow")
    context: str | None = None
