"""Validated specs, one pydantic model per (entity type, kind).

A bad spec raises :class:`EntityError` naming the field, and nothing is saved.
Specs are stored as plain dictionaries (``None`` fields left out) so that two
specs compare equal exactly when a new version is *not* needed.

The models live in one module per runtime (or per group of entity types) and
are imported on first use: creating a pydantic model class costs ~2 ms of
CPU, and an Airflow task running a python function needs 5 of the 12.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from digitalhub_provider.errors import EntityError

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

PYTHON_VERSIONS = ("PYTHON3_9", "PYTHON3_10", "PYTHON3_11", "PYTHON3_12", "PYTHON3_13")

TASK_KINDS = {
    "python": ("job", "build", "serve"),
    "mlrun": ("job", "build"),
    "kfp": ("pipeline",),
}

# (entity type, kind) -> "module:class" under this package
SPEC_MODELS: dict[tuple[str, str], str] = {
    ("project", "project"): "materials:ProjectSpec",
    ("function", "python"): "python:PythonFunctionSpec",
    ("function", "mlrun"): "mlrun:MlrunFunctionSpec",
    ("workflow", "kfp"): "kfp:KfpWorkflowSpec",
    ("dataitem", "table"): "materials:DataitemSpec",
    ("dataitem", "dataitem"): "materials:DataitemSpec",
    ("artifact", "artifact"): "materials:ArtifactSpec",
    ("model", "model"): "materials:ModelSpec",
}
for _runtime, _actions in TASK_KINDS.items():
    for _action in _actions:
        SPEC_MODELS[("task", f"{_runtime}+{_action}")] = "runs:TaskSpec"
        SPEC_MODELS[("run", f"{_runtime}+{_action}:run")] = "runs:RunSpecModel"


def kinds_of(entity_type: str) -> list[str]:
    return sorted(k for (t, k) in SPEC_MODELS if t == entity_type)


def spec_model(entity_type: str, kind: str) -> type[BaseModel]:
    """The model validating specs of ``(entity_type, kind)``, imported on first use."""
    where = SPEC_MODELS.get((entity_type, kind))
    if where is None:
        raise EntityError(f"unknown {entity_type} kind {kind!r}: expected one of {', '.join(kinds_of(entity_type))}")
    module, name = where.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)  # type: ignore[no-any-return]


def validate_spec(entity_type: str, kind: str, spec: dict[str, Any] | None) -> dict[str, Any]:
    """Validate ``spec`` for ``(entity_type, kind)`` and return it without unset fields."""
    from pydantic import ValidationError

    model = spec_model(entity_type, kind)
    data = dict(spec or {})
    renamed = "schema" in data and "schema_" in model.model_fields  # a pydantic name clash (DataitemSpec)
    if renamed:
        data["schema_"] = data.pop("schema")
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise EntityError(f"invalid {entity_type} spec ({kind}): {_describe(exc)}") from None
    out = parsed.model_dump(exclude_none=True, mode="json")
    if "schema_" in out:
        out["schema"] = out.pop("schema_")
    return out  # type: ignore[no-any-return]


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
