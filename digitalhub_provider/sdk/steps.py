"""What one KFP task of a DigitalHub pipeline runs: the step's run, through the run controller.

Called by the step's generated component (see
:mod:`digitalhub_provider.runtimes.kfp.compile`), in a KFP task process: a
subprocess of ``kfp.local`` in the kfp environment, or a pod on a KFP cluster.
That process is the control plane *of the step run*, as an Airflow task is of
its run: it resolves the function (latest version, or the pinned id), creates
the step run ``step_of`` the workflow run, and has the run controller execute
it with the local launcher. The workflow run itself is written only by its own
control plane, which stops the step runs with it.

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

from digitalhub_provider.errors import DigitalHubError
from digitalhub_provider.runtimes.kfp.step import LABEL_PREFIX, resolve_function, summary_url
from digitalhub_provider.states import State


class StepFailed(RuntimeError):
    """The step's run did not complete (its KFP task fails, so later steps do not run)."""


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
        summary.update(state=State.ERROR.value, message=str(exc))
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
    if run.state == State.COMPLETED.value:
        missing = [name for _, name, kind in spec["exposed"] if name not in (outputs if kind == "output" else results)]
        if missing:
            produced = ", ".join([*outputs, *results]) or "nothing"
            summary.update(
                state=State.ERROR.value,
                message=f"the run of {spec['function']!r} produced no {', '.join(map(repr, missing))} "
                f"(it produced: {produced})",
            )
    _write(ctx, url, summary)
    if summary["state"] != State.COMPLETED.value:
        raise StepFailed(f"step {spec['name']!r}: {summary['message']}")
    exposed = [outputs[name] if kind == "output" else json.dumps(results[name]) for _, name, kind in spec["exposed"]]
    return tuple(exposed) if exposed else None


def execute(spec: dict[str, Any], refs: dict[str, Any], ctx: Any, current: dict[str, Any]) -> Any:
    """The step's run, created and executed by the run controller (as ``function.run()`` does)."""
    from digitalhub_provider.launchers.local import LocalLauncher
    from digitalhub_provider.sdk.controller import RunController

    workflow = spec["workflow"]
    fn = resolve_function(spec, workflow["project"], ctx)
    inputs = {k: resolve_value(v, refs) for k, v in (spec.get("inputs") or {}).items()}
    parameters = {k: resolve_value(v, refs) for k, v in (spec.get("parameters") or {}).items()}
    labels = [
        f"{LABEL_PREFIX}workflow={workflow['name']}",
        f"{LABEL_PREFIX}workflow_run={workflow['run_id']}",
        f"{LABEL_PREFIX}step={spec['name']}",
    ]
    controller = RunController(ctx, caller="the KFP step")
    current["controller"] = controller
    run = controller.create(
        fn, action=spec["action"], inputs=inputs, parameters=parameters, outputs=spec.get("outputs") or None,
        values=spec.get("values") or None, local_execution=True, labels=labels,
        relationships=[{"type": "step_of", "dest": workflow["run_key"]}], cache=spec.get("cache"),
        **(spec.get("task") or {}),
    )  # fmt: skip
    current["run"] = run
    print(f"step {spec['name']!r}: run {run.key} of {fn.key} ({spec['action']})", flush=True)
    return controller.execute(fn, run, LocalLauncher(on_line=_print))


def _stop_on_sigterm(current: dict[str, Any], ctx: Any) -> None:
    """When the workflow is stopped, its process group gets SIGTERM: stop the step run too.

    The step's runner lives in its own process group (the local launcher starts
    it so), so it would survive the workflow's; stopping the run kills it and
    sets it STOPPED instead of leaving it RUNNING.
    """

    def handle(signum: int, _frame: Any) -> None:
        run, controller = current.get("run"), current.get("controller")
        if run is not None and controller is not None:
            try:
                controller.stop(run)
            except Exception as exc:  # best effort: we are being stopped
                print(f"could not stop the step run: {exc}", file=sys.stderr, flush=True)
        sys.exit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handle)
    except ValueError:
        pass  # not the main thread: nothing to install


def _write(ctx: Any, url: str, summary: dict[str, Any]) -> None:
    ctx.data_store(url).write_bytes(url, json.dumps(summary, default=str).encode())


def _print(line: str) -> None:
    print(line, flush=True)
