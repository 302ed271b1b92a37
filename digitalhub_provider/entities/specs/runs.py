"""Specs of tasks and runs (every runtime's)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, field_validator

from digitalhub_provider.entities.specs.base import Spec

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")


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
    service_name: str | None = None
    # serve on the local launcher: where the service listens (default 127.0.0.1, a free port)
    host: str | None = None
    port: int | None = None
    instructions: list[str] | None = None

    @field_validator("service_type")
    @classmethod
    def _service_type(cls, v: str | None) -> str | None:
        if v is not None and v not in SERVICE_TYPES:
            raise ValueError(f"must be one of {', '.join(SERVICE_TYPES)}")
        return v

    @field_validator("port")
    @classmethod
    def _port(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v <= 65535:
            raise ValueError("must be a TCP port, 0 to 65535 (0: a free one)")
        return v

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
