"""What one KFP task of a DigitalHub pipeline runs: the step's platform function.

Called by the step's generated component (see :mod:`.compile`), in a KFP task
process: a subprocess of ``kfp.local`` in the kfp environment, or a pod on a
KFP cluster. It is the control plane *of the step run*: it resolves the
function (latest version, or the pinned id), creates the step run with a
``step_of`` relationship to the workflow run, starts it with the local
launcher and records its outcome, exactly as ``function.run()`` does. The
workflow run itself is written only by its own control plane.

The step's outcome (run key, state, outputs, results, message) is written to
``{data store}/runs/{workflow run id}/steps/{step}.json``, where the workflow's
runner reads it; the step's outputs go on to the next steps as KFP outputs.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from typing import Any

from digitalhub_provider.errors import DigitalHubError, EntityNotFoundError, RunError

STEPS_FOLDER = "steps"
LABEL_PREFIX = "kfp."


class StepFailed(RuntimeError):
    """The step's run did not complete (its KFP task fails, so later steps do not run)."""


def summary_url(ctx: Any, workflow_run_id: str, step: str) -> str:
    return str(ctx.run_url(workflow_run_id, f"{STEPS_FOLDER}/{step}.json"))


def resolve_value(item: dict[str, Any], refs: dict[str, Any]) -> Any:
    if "param" not in item:
        return item.get("value")
    value = refs[item["param"]]
    return json.loads(value) if item.get("decode") and isinstance(value, str) else value


def run_step(spec_json: str, refs: dict[str, Any]) -> tuple[str, ...] | None:
    """Run the step described by ``spec_json`` and return its exposed outputs, in order."""
    from digitalhub_provider.sdk.context import get_context

    logging.getLogger("alembic").setLevel(logging.WARNING)  # the KFP executor logs INFO: keep the store quiet
    spec = json.loads(spec_json)
    ctx = get_context()
    workflow = spec["workflow"]
    url = summary_url(ctx, workflow["run_id"], spec["name"])
    summary: dict[str, Any] = {"step": spec["name"], "function": spec["function"], "action": spec["action"]}
    current: dict[str, Any] = {}
    _stop_on_sigterm(current, ctx)
    try:
        run = execute(spec, refs, ctx, current)
    except DigitalHubError as exc:
        summary.update(state="ERROR", message=str(exc))
        _write(ctx, url, summary)
        raise StepFailed(f"step {spec['name']!r}: {exc}") from None
    outputs: dict[str, str] = dict(run.status.get("outputs") or {})
    results: dict[str, Any] = dict(run.status.get("results") or {})
    summary.update(
        run_id=run.id,
        run_key=run.key,
        run_state=run.state,
        state=run.state,
        message=run.status.message,
        outputs=outputs,
        results=results,
    )
    if run.state == "COMPLETED":
        missing = [name for _, name, kind in spec["exposed"] if name not in (outputs if kind == "output" else results)]
        if missing:
            produced = ", ".join([*outputs, *results]) or "nothing"
            summary.update(
                state="ERROR",
                message=f"the run of {spec['function']!r} produced no {', '.join(map(repr, missing))} "
                f"(it produced: {produced})",
            )
    _write(ctx, url, summary)
    if summary["state"] != "COMPLETED":
        raise StepFailed(f"step {spec['name']!r}: {summary['message']}")
    exposed = [outputs[name] if kind == "output" else json.dumps(results[name]) for _, name, kind in spec["exposed"]]
    return tuple(exposed) if exposed else None


def execute(spec: dict[str, Any], refs: dict[str, Any], ctx: Any, current: dict[str, Any]) -> Any:
    """The step's run, through the control plane's steps (as ``function.run()`` chains them)."""
    from digitalhub_provider.launchers.local import LocalProcess
    from digitalhub_provider.sdk.runs import finish_run, prepare_run, start_run

    workflow = spec["workflow"]
    fn = resolve_function(spec, workflow["project"], ctx)
    inputs = {k: resolve_value(v, refs) for k, v in (spec.get("inputs") or {}).items()}
    parameters = {k: resolve_value(v, refs) for k, v in (spec.get("parameters") or {}).items()}
    labels = [
        f"{LABEL_PREFIX}workflow={workflow['name']}",
        f"{LABEL_PREFIX}workflow_run={workflow['run_id']}",
        f"{LABEL_PREFIX}step={spec['name']}",
    ]
    run = prepare_run(
        fn, action=spec["action"], inputs=inputs, parameters=parameters, outputs=spec.get("outputs") or None,
        values=spec.get("values") or None, local_execution=True, labels=labels, ctx=ctx, **(spec.get("task") or {}),
    )  # fmt: skip
    # prepare_run knows run_of and consumes; the step's link to its workflow run is added here.
    run.add_relationship("step_of", workflow["run_key"])
    ctx.metadata.write(update=[("run", run.to_dict())])
    current["run"] = run
    print(f"step {spec['name']!r}: run {run.key} of {fn.key} ({spec['action']})", flush=True)
    started = start_run(run, fn, ctx, log=_print)
    if not isinstance(started, LocalProcess):
        return started
    proc = started
    current["proc"] = proc
    code = proc.wait()
    return finish_run(run, ctx, exit_code=code)


def resolve_function(spec: dict[str, Any], project: str, ctx: Any) -> Any:
    """The step's function: a key, ``name:id``, or a name (latest version, or ``function_id``)."""
    from digitalhub_provider.entities import Function
    from digitalhub_provider.entities.keys import is_key
    from digitalhub_provider.sdk import crud

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


def _stop_on_sigterm(current: dict[str, Any], ctx: Any) -> None:
    """When the workflow is stopped, its process group gets SIGTERM: stop the step run too.

    The step's runner lives in its own process group (the local launcher starts
    it so), so it would survive the workflow's; stopping the run kills it and
    sets it STOPPED instead of leaving it RUNNING.
    """

    def handle(signum: int, _frame: Any) -> None:
        from digitalhub_provider.sdk.runs import stop_run

        run = current.get("run")
        if run is not None:
            try:
                run._ctx = ctx
                stop_run(run)
            except Exception as exc:  # best effort: we are being stopped
                print(f"could not stop the step run: {exc}", file=sys.stderr, flush=True)
        sys.exit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handle)
    except ValueError:
        pass  # not the main thread: nothing to install


def stop_step_runs(ctx: Any, workflow_run: Any) -> list[str]:
    """Stop the unfinished runs that are ``step_of`` ``workflow_run``; return their keys.

    A step's runner has its own process group, so stopping the workflow's runner
    does not reach it; the executor of the step stops it on SIGTERM, but it may be
    killed before it can. The workflow's control plane calls this after stopping
    the workflow run, so no step run is left RUNNING (its process is killed when
    it runs on this machine).
    """
    from digitalhub_provider.entities import Run, State
    from digitalhub_provider.sdk.runs import stop_run

    stopped: list[str] = []
    for state in (State.CREATED, State.BUILT, State.READY, State.RUNNING):
        for data in ctx.metadata.list(workflow_run.project, "run", state=state.value, limit=500):
            run = Run.from_dict(data, ctx)
            if any(r.type == "step_of" and r.dest == workflow_run.key for r in run.metadata.relationships or []):
                stop_run(run)
                stopped.append(run.key)
    return stopped


def _write(ctx: Any, url: str, summary: dict[str, Any]) -> None:
    ctx.data_store(url).write_bytes(url, json.dumps(summary, default=str).encode())


def _print(line: str) -> None:
    print(line, flush=True)
