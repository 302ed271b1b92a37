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
import json
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

# A task's arguments: the fields of ``runs:TaskSpec`` but ``function``, in its order (a test holds the
# two equal; reading them off the model would import pydantic's model in every task process).
TASK_FIELDS = (
    "node_selector", "volumes", "resources", "affinity", "tolerations", "envs", "secrets", "profile",
    "backoff_limit", "schedule", "replicas", "service_type", "service_name", "host", "port", "instructions",
)  # fmt: skip
POD_FIELDS = TASK_FIELDS[: TASK_FIELDS.index("profile") + 1]  # what a pod is made of
JOB_TASK_FIELDS = TASK_FIELDS[: TASK_FIELDS.index("backoff_limit") + 1]  # what a job's task takes

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
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
    return out


def is_plain_json(value: Any) -> bool:
    """Whether ``value`` is JSON as a model's JSON dump would leave it: None, bool, int, str, a finite
    float, and lists and string-keyed dictionaries of those (exact types: no subclass, no tuple)."""
    kind = type(value)
    if kind in (str, int, bool) or value is None:
        return True
    if kind is float:
        return value - value == 0  # not inf or nan (a model dumps those as null)
    if kind is list:
        return all(is_plain_json(v) for v in value)
    if kind is dict:
        return all(type(k) is str and is_plain_json(v) for k, v in value.items())
    return False


def plain_run_spec(spec: dict[str, Any]) -> dict[str, Any] | None:
    """A run's spec as :func:`validate_spec` would return it, without building its model, when every
    field already has the model's type and JSON form (the usual case); None when the model must
    convert or reject something (then validate it)."""

    def strings(values: Any) -> bool:
        return all(type(v) is str for v in values)

    inputs, parameters, outputs, values = (spec.get(k) for k in ("inputs", "parameters", "outputs", "values"))
    plain = (
        is_plain_json(spec)  # exact JSON types and string keys all the way down
        and type(spec.get("task")) is str
        and type(spec.get("function")) is str
        and type(spec.get("local_execution", False)) is bool
        and (inputs is None or (type(inputs) is dict and strings(inputs.values())))
        and (parameters is None or type(parameters) is dict)
        and (outputs is None or (type(outputs) is list and strings(outputs))
             or (type(outputs) is dict and strings(outputs.values())))
        and (values is None or (type(values) is list and strings(values)))
    )  # fmt: skip
    if not plain:
        return None
    clean = {"local_execution": False, **{k: v for k, v in spec.items() if v is not None}}  # the model's default
    return json.loads(json.dumps(clean))  # a copy, as the model's dump is: the entity owns its dictionaries


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
