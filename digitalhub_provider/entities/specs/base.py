"""What the spec models share."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

PythonVersion = Literal["PYTHON3_9", "PYTHON3_10", "PYTHON3_11", "PYTHON3_12", "PYTHON3_13"]


class Spec(BaseModel):
    # Schemas are built on first use, not at import: a runner or a DAG file that never
    # validates a spec of some kind does not pay for it.
    model_config = ConfigDict(extra="forbid", defer_build=True)


def at_most_one(spec: BaseModel, fields: tuple[str, ...]) -> None:
    given = [f for f in fields if getattr(spec, f)]
    if len(given) > 1:
        raise ValueError(f"give only one of {', '.join(fields)} (got {', '.join(given)})")


class CodeSpec(Spec):
    code_src: str | None = None
    code: str | None = None
    base64: str | None = None
    handler: str | None = None
    lang: str | None = None
    image: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CodeSpec:
        at_most_one(self, ("code_src", "code", "base64"))
        return self
