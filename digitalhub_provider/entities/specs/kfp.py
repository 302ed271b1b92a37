"""The kfp runtime's workflow spec."""

from __future__ import annotations

from digitalhub_provider.entities.specs.base import CodeSpec


class KfpWorkflowSpec(CodeSpec):
    tag: str | None = None
