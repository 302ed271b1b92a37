"""Where a KFP step's outcome is kept, and how a step names its function.

Shared by the workflow's runner (:mod:`.job`, which checks every step's
function before anything runs and reads each step's outcome) and the step's
control plane (:mod:`digitalhub_provider.sdk.steps`, which runs it).
"""

from __future__ import annotations

from typing import Any

from digitalhub_provider.errors import EntityNotFoundError, RunError

STEPS_FOLDER = "steps"
LABEL_PREFIX = "kfp."


def summary_url(ctx: Any, workflow_run_id: str, step: str) -> str:
    return str(ctx.run_url(workflow_run_id, f"{STEPS_FOLDER}/{step}.json"))


def resolve_function(spec: dict[str, Any], project: str, ctx: Any) -> Any:
    """The step's function: a key, ``name:id``, or a name (latest version, or ``function_id``)."""
    from digitalhub_provider.entities import Function
    from digitalhub_provider.entities.keys import is_key
    from digitalhub_provider.stores import crud

    ref: str = spec["function"]
    entity_id = spec.get("function_id")
    if not is_key(ref) and ":" in ref:
        ref, _, entity_id = ref.partition(":")
    try:
        if is_key(ref):
            return crud.get_entity(Function, ref, ctx=ctx)
        return crud.get_entity(Function, ref, project=project, entity_id=entity_id, ctx=ctx)
    except EntityNotFoundError:
        pinned = f" version {entity_id}" if entity_id else ""
        raise RunError(f"function {ref!r}{pinned} does not exist in project {project!r}") from None
