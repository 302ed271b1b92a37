"""Run caching: a run that would compute what an earlier run computed reuses its outputs and results.

Opt-in per call (``cache=True``, or ``cache={"max_age": seconds}``). The run's *fingerprint* is
what decides its outcome: the function version (its key holds the version id), the action, the
input entity versions (keys with ids), the parameters, the outputs and values asked for, and the
task spec. An earlier COMPLETED run of that function version with the same fingerprint (and young
enough) is a hit when every output entity it produced is still there, files included; the new run is
then recorded COMPLETED with that run's outputs and results, a ``cached_from`` relationship to it,
its own ``consumes`` lineage, and no runner. A function labelled ``non-deterministic`` is never
cached. Every cached run says on its status why it hit or missed (``status.cache``).

Concurrent identical runs may both execute (nothing is locked): each registers its own outputs, and
a later run hits either.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from digitalhub_provider.errors import DigitalHubError, EntityError
from digitalhub_provider.states import State

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.sdk.context import Context

NON_DETERMINISTIC = "non-deterministic"  # the function label that turns caching off
LOOKUP_LIMIT = 200  # the newest COMPLETED runs of the function version looked at


def cache_policy(cache: Any) -> dict[str, Any] | None:
    """``cache`` as given to ``run()`` -> the policy stored on the run's spec, or None (no caching)."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return {"max_age": None}
    if isinstance(cache, dict) and set(cache) <= {"max_age"}:
        age = cache.get("max_age")
        if age is not None and (isinstance(age, bool) or not isinstance(age, int | float) or age <= 0):
            raise EntityError(f"cache max_age must be a positive number of seconds, got {age!r}")
        return {"max_age": age}
    raise EntityError(f"cache must be True, False or {{'max_age': seconds}}, got {cache!r}")


def fingerprint(fn: Executable, action: str, spec: dict[str, Any]) -> str:
    """What decides a run's outcome, hashed (see the module's docstring)."""
    decisive = {k: v for k, v in spec.items() if k not in ("task", "local_execution", "cache")}
    text = json.dumps({"function": fn.key, "action": action, **decisive}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def refusal(fn: Executable) -> str | None:
    """Why runs of ``fn`` are never cached, or None."""
    if NON_DETERMINISTIC in (fn.metadata.labels or []):
        return f"the function is labelled {NON_DETERMINISTIC!r}"
    return None


def find_hit(fn: Executable, run: Run, ctx: Context) -> tuple[dict[str, Any] | None, str]:
    """The earlier run ``run`` may reuse (as stored) and why, or (None, why not)."""
    policy = run.spec.get("cache") or {}
    why_not = refusal(fn)
    if why_not is not None:
        return None, why_not
    rows = ctx.metadata.list(
        fn.project, "run", function_name=fn.name, function_id=fn.id, state=State.COMPLETED.value, limit=LOOKUP_LIMIT
    )
    same = [r for r in rows if (r.get("spec") or {}).get("cache", {}).get("key") == policy.get("key")]
    if not same:
        return None, "no earlier COMPLETED run of this function version with the same inputs, parameters and task"
    max_age = policy.get("max_age")
    reasons = []
    for earlier in same:
        age = _age(earlier)
        if max_age is not None and (age is None or age > max_age):
            reasons.append(f"run {earlier['id']} is older than max_age {max_age:g} s")
            continue
        gone = _missing_output(earlier, ctx)
        if gone is not None:
            reasons.append(f"run {earlier['id']}: {gone}")
            continue
        return earlier, f"the outputs and results of run {earlier['key']}"
    return None, "; ".join(reasons)


def _age(run: dict[str, Any]) -> float | None:
    stamp = ((run.get("status") or {}).get("timings") or {}).get("completed")
    if not stamp:
        return None
    when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return (datetime.now(timezone.utc) - when).total_seconds()


def _missing_output(run: dict[str, Any], ctx: Context) -> str | None:
    """Why one of ``run``'s outputs cannot be reused (its entity deleted, or its file gone), or None."""
    from digitalhub_provider.stores import crud

    for name, key in ((run.get("status") or {}).get("outputs") or {}).items():
        try:
            entity = crud.get_entity_by_key(key, ctx=ctx)
        except DigitalHubError:
            return f"its output {name!r} ({key}) was deleted"
        path = (entity.spec or {}).get("path") if isinstance(entity.spec, dict) else None
        if isinstance(path, str) and path and not ctx.data_store(path).exists(path):
            return f"the file of its output {name!r} is gone ({path})"
    return None
