"""Specs as DigitalHub Core's own SDK writes them, in this platform's form.

The official SDK nests a python function's (or a KFP workflow's) code under ``source``
(``{"base64": ..., "handler": ..., "lang": "python"}``, or ``{"source": "<URI>"}``) and
sends fields this platform has no use for. :func:`core_spec` lifts the code to the top
(``base64``, ``code``, ``code_src``, ``handler``, ``lang``, ``init_function``) and leaves out what the
kind's model does not know, so the spec can be validated and run here. A kind whose own model
has a ``source`` (mlrun) keeps it.
"""

from __future__ import annotations

from typing import Any

from digitalhub_provider.entities.specs import spec_model

# DigitalHub Core's field under ``source`` -> this platform's spec field
SOURCE_FIELDS = {
    "source": "code_src",
    "base64": "base64",
    "code": "code",
    "handler": "handler",
    "lang": "lang",
    "init_function": "init_function",
}


def core_spec(entity_type: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (as DigitalHub Core's SDK sends it) in this platform's form; an unknown kind is an
    :class:`~digitalhub_provider.errors.EntityError`."""
    model = spec_model(entity_type, kind)
    flat = {k: v for k, v in spec.items() if v is not None}
    source = flat.get("source")
    if isinstance(source, dict) and "source" not in model.model_fields:
        del flat["source"]
        for wire, ours in SOURCE_FIELDS.items():
            if source.get(wire) is not None:
                flat.setdefault(ours, source[wire])
    if model.model_config.get("extra") == "allow":
        return flat
    known = set(model.model_fields) | {"schema"}  # the dataitems' "schema" is a field under another name
    return {k: v for k, v in flat.items() if k in known}
