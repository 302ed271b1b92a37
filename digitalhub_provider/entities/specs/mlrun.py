"""The mlrun runtime's function spec."""

from __future__ import annotations

from pydantic import model_validator

from digitalhub_provider.entities.specs.base import Spec, at_most_one


class MlrunSource(Spec):
    source: str | None = None
    code: str | None = None
    base64: str | None = None
    lang: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MlrunSource:
        at_most_one(self, ("source", "code", "base64"))
        return self


class MlrunFunctionSpec(Spec):
    source: MlrunSource | None = None
    handler: str | None = None
    image: str | None = None
    tag: str | None = None
    requirements: list[str] | None = None
