"""Validated specs, one model per (entity type, kind).

A bad spec raises :class:`EntityError` naming the field, and nothing is saved.
Specs are stored as plain dictionaries (``None`` fields left out) so that two
specs compare equal exactly when a new version is *not* needed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from digitalhub_provider.errors import EntityError

PYTHON_VERSIONS = ("PYTHON3_9", "PYTHON3_10", "PYTHON3_11", "PYTHON3_12", "PYTHON3_13")
PythonVersion = Literal["PYTHON3_9", "PYTHON3_10", "PYTHON3_11", "PYTHON3_12", "PYTHON3_13"]


class _Spec(BaseModel):
    # Schemas are built on first use, not at import: a runner or a DAG file that never
    # validates a spec of some kind does not pay for it.
    model_config = ConfigDict(extra="forbid", defer_build=True)


def _at_most_one(spec: BaseModel, fields: tuple[str, ...]) -> None:
    given = [f for f in fields if getattr(spec, f)]
    if len(given) > 1:
        raise ValueError(f"give only one of {', '.join(fields)} (got {', '.join(given)})")


class _CodeSpec(_Spec):
    code_src: str | None = None
    code: str | None = None
    base64: str | None = None
    handler: str | None = None
    lang: str | None = None
    image: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _CodeSpec:
        _at_most_one(self, ("code_src", "code", "base64"))
        return self


class PythonFunctionSpec(_CodeSpec):
    python_version: PythonVersion
    init_function: str | None = None
    base_image: str | None = None
    requirements: list[str] | None = None


class MlrunSource(_Spec):
    source: str | None = None
    code: str | None = None
    base64: str | None = None
    lang: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MlrunSource:
        _at_most_one(self, ("source", "code", "base64"))
        return self


class MlrunFunctionSpec(_Spec):
    source: MlrunSource | None = None
    handler: str | None = None
    image: str | None = None
    tag: str | None = None
    requirements: list[str] | None = None


class KfpWorkflowSpec(_CodeSpec):
    tag: str | None = None


class TaskSpec(_Spec):
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


class RunSpecModel(_Spec):
    """The run entity's spec (not to be confused with the runner's RunSpec file)."""

    model_config = ConfigDict(extra="allow")
    task: str
    function: str
    inputs: dict[str, str] | None = None
    parameters: dict[str, Any] | None = None
    outputs: dict[str, str] | list[str] | None = None
    values: list[str] | None = None
    local_execution: bool = False


class DataitemSpec(_Spec):
    model_config = ConfigDict(extra="allow")
    path: str
    src_path: str | None = None
    schema_: dict[str, Any] | None = None


class ArtifactSpec(_Spec):
    model_config = ConfigDict(extra="allow")
    path: str
    src_path: str | None = None


class ModelSpec(_Spec):
    model_config = ConfigDict(extra="allow")
    path: str
    src_path: str | None = None
    framework: str | None = None
    algorithm: str | None = None
    base_model: str | None = None
    parameters: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None


class ProjectSpec(_Spec):
    model_config = ConfigDict(extra="allow")
    context: str | None = None


TASK_KINDS = {
    "python": ("job", "build", "serve"),
    "mlrun": ("job", "build"),
    "kfp": ("pipeline",),
}

SPEC_MODELS: dict[tuple[str, str], type[_Spec]] = {
    ("project", "project"): ProjectSpec,
    ("function", "python"): PythonFunctionSpec,
    ("function", "mlrun"): MlrunFunctionSpec,
    ("workflow", "kfp"): KfpWorkflowSpec,
    ("dataitem", "table"): DataitemSpec,
    ("dataitem", "dataitem"): DataitemSpec,
    ("artifact", "artifact"): ArtifactSpec,
    ("model", "model"): ModelSpec,
}
for _runtime, _actions in TASK_KINDS.items():
    for _action in _actions:
        SPEC_MODELS[("task", f"{_runtime}+{_action}")] = TaskSpec
        SPEC_MODELS[("run", f"{_runtime}+{_action}:run")] = RunSpecModel


def kinds_of(entity_type: str) -> list[str]:
    return sorted(k for (t, k) in SPEC_MODELS if t == entity_type)


def validate_spec(entity_type: str, kind: str, spec: dict[str, Any] | None) -> dict[str, Any]:
    """Validate ``spec`` for ``(entity_type, kind)`` and return it without unset fields."""
    model = SPEC_MODELS.get((entity_type, kind))
    if model is None:
        raise EntityError(f"unknown {entity_type} kind {kind!r}: expected one of {', '.join(kinds_of(entity_type))}")
    data = dict(spec or {})
    if "schema" in data and model is DataitemSpec:
        data["schema_"] = data.pop("schema")
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise EntityError(f"invalid {entity_type} spec ({kind}): {_describe(exc)}") from None
    out = parsed.model_dump(exclude_none=True, mode="json")
    if "schema_" in out:
        out["schema"] = out.pop("schema_")
    return out


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "spec"
        msg = err["msg"]
        if err["type"] == "literal_error" and loc == "python_version":
            msg = f"must be one of {', '.join(PYTHON_VERSIONS)} (got {err.get('input')!r})"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"field {loc!r}: {msg}" if loc != "spec" else msg)
    return "; ".join(parts)
