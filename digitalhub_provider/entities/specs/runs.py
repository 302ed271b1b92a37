"""Specs of tasks and runs (every runtime's)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, field_validator

from digitalhub_provider.entities.specs.base import Spec


class TaskSpec(Spec):
    function: str
    node_selector: list[dict[str, Any]] | dict[str, str] | None = None
    volumes: list[dict[str, Any]] | None = None
    resources: dict[str, Any] | None = None
    affinity: dict[str, Any] | None = None
    tolerations: list[dict[str, Any]] | None = None
    envs: list[dict[str, Any]] | None = None
    secrets: list[str] | None = None
    profile: str | None = None
    backoff_limit: int | None = None
    schedule: str | None = None
    replicas: int | None = None
    service_type: str | None = None
    instructions: list[str] | None = None

    @field_validator("backoff_limit", "replicas")
    @classmethod
    def _non_negative(cls, v: int | None) -> int | None:
        if v is not None and v < 0:
            raise ValueError("must be zero or more")
        return v


class RunSpecModel(Spec):
    """The run entity's spec (not to be confused with the runner's RunSpec file)."""

    model_config = ConfigDict(extra="allow")
    task: str
    function: str
    inputs: dict[str, str] | None = None
    parameters: dict[str, Any] | None = None
    outputs: dict[str, str] | list[str] | None = None
    values: list[str] | None = None
    local_execution: bool = False
