"""The control plane of a run: the one writer of run status.

``prepare_run`` validates everything and creates the task and run records
(CREATED) before any process starts; ``build_run`` readies the runtime
environment (BUILT); ``write_runspec`` writes the RunSpec (READY);
``start_local`` launches the runner (RUNNING); ``finish_run`` reads the
RunResult and registers outputs, lineage and the final state in one
transaction (COMPLETED, ERROR or STOPPED). ``run_executable`` chains them for
the SDK's ``function.run()``; the Airflow operators call the steps themselves.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitalhub_provider.entities import ENTITY_CLASSES, Entity, Run, State, Task
from digitalhub_provider.entities.base import now_iso
from digitalhub_provider.entities.executable import Executable
from digitalhub_provider.entities.keys import is_key, parse_key
from digitalhub_provider.entities.specs import TASK_KINDS, plain_run_spec, validate_spec
from digitalhub_provider.errors import DigitalHubError, EntityError, EntityNotFoundError
from digitalhub_provider.launchers.in_process import IN_PROCESS, InProcessRun
from digitalhub_provider.runtimes.contract import LOG_FILE, RESULT_FILE, RUNSPEC_FILE, RunResult, RunSpec
from digitalhub_provider.runtimes.registry import BUILD_ACTION, RUNNERS, environment_of, source_fields
from digitalhub_provider.sdk import crud
from digitalhub_provider.sdk.context import Context

if TYPE_CHECKING:  # the subprocess launcher and the environment builder load on first use
    from digitalhub_provider.launchers.local import LocalProcess

TASK_FIELDS = (
    "node_selector",
    "volumes",
    "resources",
    "affinity",
    "tolerations",
    "envs",
    "secrets",
    "profile",
    "backoff_limit",
    "schedule",
    "replicas",
    "service_type",
    "instructions",
)
INPUT_TYPES = ("dataitem", "artifact", "model")
_active: dict[str, LocalProcess | InProcessRun] = {}
_active_lock = threading.Lock()


# -- state ---------------------------------------------------------------------------------
def set_state(
    ctx: Context, run: Run, state: State, message: str | None = None, persist: bool = True, **fields: Any
) -> Run:
    """Move ``run`` to ``state`` (its timing and transition recorded) and save it; with ``persist=False``
    the change is only in memory, saved with the next one (steps that follow each other at once)."""
    stamp = now_iso()
    status = run.status
    status.state = state.value
    if message is not None:
        status.message = message
    timings = dict(status.get("timings") or {})
    timings[state.value.lower()] = stamp
    transitions = list(status.get("transitions") or [])
    transitions.append({"status": state.value, "time": stamp, **({"message": message} if message else {})})
    for name, value in {"timings": timings, "transitions": transitions, **fields}.items():
        setattr(status, name, value)
    run.metadata.updated = stamp
    if persist:
        ctx.metadata.write(update=[("run", run.to_dict())])
    return run


# -- prepare --------------------------------------------------------------------------------
def default_action(kind: str) -> str:
    return TASK_KINDS.get(kind, ("job",))[0]


def prepare_run(
    fn: Executable,
    action: str | None = None,
    inputs: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    outputs: list[str] | dict[str, str] | None = None,
    values: list[str] | None = None,
    local_execution: bool = False,
    labels: list[str] | None = None,
    ctx: Context | None = None,
    relationships: list[dict[str, str]] | None = None,
    **task_params: Any,
) -> Run:
    """Validate the call, then create (or reuse) the task and create the run (CREATED).

    ``relationships`` are added to ``run_of`` and ``consumes`` (a kfp step passes ``step_of``)."""
    ctx = ctx or fn.ctx
    action = action or default_action(fn.kind)
    if action not in TASK_KINDS.get(fn.kind, ()):
        raise EntityError(
            f"action {action!r} is not one of {fn.kind}'s actions: {', '.join(TASK_KINDS.get(fn.kind, ()))}"
        )
    unknown = sorted(set(task_params) - set(TASK_FIELDS))
    if unknown:
        raise EntityError(f"unknown run argument(s) {', '.join(map(repr, unknown))}")
    if parameters is not None and not isinstance(parameters, dict):
        raise EntityError(f"parameters must be a dictionary, got {type(parameters).__name__}")
    task_kind = f"{fn.kind}+{action}"
    given = {k: v for k, v in task_params.items() if v is not None}
    # Without run arguments the task's spec is the function's key, nothing a model could reject.
    task_spec = validate_spec("task", task_kind, {"function": fn.key, **given}) if given else {"function": fn.key}
    input_keys = {name: resolve_input(name, ref, fn.project, ctx).key for name, ref in (inputs or {}).items()}
    task = _ensure_task(fn, task_kind, task_spec, ctx)
    run_spec = {
        "task": task.key,
        "function": fn.key,
        "inputs": input_keys,
        "parameters": parameters or {},
        "outputs": outputs,
        "values": values,
        "local_execution": local_execution,
        **task_spec,
    }
    rels = [
        {"type": "run_of", "dest": fn.key},
        *({"type": "consumes", "dest": k} for k in input_keys.values()),
        *(relationships or []),
    ]
    # The usual spec is plain JSON of the model's types: checked here without building the model.
    plain = plain_run_spec(run_spec)
    run = Run.build(
        project=fn.project,
        name="run",
        kind=f"{task_kind}:run",
        spec=run_spec if plain is None else plain,
        labels=labels,
        relationships=rels,
        status={"state": State.CREATED.value},
        spec_checked=plain is not None,
    )
    run._ctx = ctx
    stamp = run.metadata.created
    run.status.timings = {"created": stamp}  # type: ignore[attr-defined]
    run.status.transitions = [{"status": "CREATED", "time": stamp}]  # type: ignore[attr-defined]
    ctx.insert("run", run.to_dict())
    return run


def resolve_input(name: str, ref: Any, project: str, ctx: Context) -> Entity:
    key = ref.key if isinstance(ref, Entity) else ref
    if not is_key(key):
        raise EntityError(f"input {name!r} must be an entity key (store://...), got {key!r}")
    parsed = parse_key(key)
    if parsed.entity_type not in INPUT_TYPES:
        raise EntityError(f"input {name!r} is a {parsed.entity_type}: inputs must be dataitems, artifacts or models")
    try:
        return crud.get_entity(ENTITY_CLASSES[parsed.entity_type], key, ctx=ctx)
    except EntityNotFoundError:
        raise EntityNotFoundError(f"input {name!r}: {key} not found") from None


def _ensure_task(fn: Executable, kind: str, spec: dict[str, Any], ctx: Context) -> Task:
    for existing in ctx.metadata.list(fn.project, "task", function_name=fn.name, kind=kind, limit=50):
        if existing.get("spec") == spec:
            return Task.from_dict(existing, ctx)  # type: ignore[return-value]
    task = Task.build(project=fn.project, name="task", kind=kind, spec=spec)
    ctx.insert("task", task.to_dict())
    return task  # type: ignore[return-value]


# -- build, RunSpec, launch -------------------------------------------------------------------
def build_run(run: Run, fn: Executable, ctx: Context, log: Any = print) -> str:
    """Ready the runtime environment; return the interpreter (BUILT)."""
    envs_dir = ctx.settings.envs_dir or str(Path(tempfile.gettempdir()) / "digitalhub-envs")
    from digitalhub_provider.launchers.envs import ensure_environment

    python_version, requirements = environment_of(fn.kind, fn.spec)
    python = ensure_environment(envs_dir, python_version, requirements, log=log)
    set_state(ctx, run, State.BUILT)
    return python


def source_of(fn: Executable) -> dict[str, Any]:
    """How the runner gets the code: inline (code, base64, a local file read now) or a URL it fetches."""
    spec = source_fields(fn.kind, fn.spec)
    if spec.get("code"):
        return {"inline": {"filename": "main.py", "base64": base64.b64encode(spec["code"].encode()).decode()}}
    if spec.get("base64"):
        return {"inline": {"filename": "main.py", "base64": spec["base64"]}}
    src = spec.get("code_src")
    if not src:
        raise EntityError(f"function {fn.name!r} has no source: set code, base64 or code_src")
    if src.startswith(("git+", "zip+", "http://", "https://")):
        return {"url": src}
    path = Path(src[len("file://") :] if src.startswith("file://") else src).expanduser()
    if not path.is_file():
        field = "source['source']" if fn.kind == "mlrun" else "code_src"
        raise EntityError(f"{field} {src!r} of function {fn.name!r}: no such file")
    return {"inline": {"filename": path.name, "base64": base64.b64encode(path.read_bytes()).decode()}}


def build_runspec(run: Run, fn: Executable, ctx: Context) -> RunSpec:
    """The RunSpec of ``run``: every input key resolved to its entity (no side effect)."""
    inputs = {}
    for name, key in (run.spec.get("inputs") or {}).items():
        entity = crud.get_entity_by_key(key, ctx=ctx)
        inputs[name] = {"type": entity.ENTITY_TYPE, "entity": entity.to_dict()}
    runtime, _, rest = run.kind.partition("+")
    return RunSpec(
        run_id=run.id,
        run_key=run.key,
        project=run.project,
        runtime=runtime,
        action=rest.split(":")[0],
        function=fn.to_dict(),
        source=source_of(fn),
        handler=fn.spec.get("handler"),
        inputs=inputs,
        parameters=run.spec.get("parameters") or {},
        outputs=run.spec.get("outputs"),
        values=run.spec.get("values"),
        data_url=ctx.data_root,
        result_url=ctx.run_url(run.id, RESULT_FILE),
    )


def store_runspec(spec: RunSpec, ctx: Context, delete_stale_result: bool = False) -> str:
    """Write ``spec`` to the data store and return its URL. Touches neither the run nor the metadata
    store, so it may run in a helper thread; ``delete_stale_result`` when the run ran before (its old
    result must not be read), decided by the caller before any runner of this attempt can write one."""
    url = ctx.run_url(spec.run_id, RUNSPEC_FILE)
    store = ctx.data_store(url)
    if delete_stale_result:
        store.delete(spec.result_url)
    store.write_bytes(url, spec.to_json())
    return url


def write_runspec(run: Run, fn: Executable, ctx: Context) -> str:
    """Write the RunSpec to the data store (READY) and return its URL."""
    return ctx.run_url(ready_runspec(run, fn, ctx).run_id, RUNSPEC_FILE)


def ready_runspec(run: Run, fn: Executable, ctx: Context, persist: bool = True) -> RunSpec:
    """Build the RunSpec, write it to the data store (READY) and return it."""
    spec = build_runspec(run, fn, ctx)
    store_runspec(spec, ctx, delete_stale_result=_has_run_before(run))
    set_state(ctx, run, State.READY, persist=persist)
    return spec


def _has_run_before(run: Run) -> bool:
    """Whether a runner may already have written a result for this run (a new run has none: skipping
    the delete saves a few store round trips on S3)."""
    transitions = run.status.get("transitions") or []
    return any(isinstance(t, dict) and t.get("status") == State.RUNNING.value for t in transitions)


def log_path(ctx: Context, run: Run) -> Path:
    local = ctx.data_store().local_path(ctx.run_url(run.id, LOG_FILE))
    return local if local is not None else Path(tempfile.gettempdir()) / "digitalhub-logs" / f"{run.id}.txt"


def start_local(run: Run, python: str, runspec_url: str, ctx: Context, on_line: Any = None) -> LocalProcess:
    """Start the runner as a local subprocess (RUNNING)."""
    from digitalhub_provider.launchers.local import LocalProcess

    env = {**os.environ, **ctx.settings.to_env(), "PYTHONUNBUFFERED": "1"}
    proc = LocalProcess(python, runspec_url, env, log_path(ctx, run), on_line=on_line)
    with _active_lock:
        _active[run.id] = proc
    set_state(ctx, run, State.RUNNING, launcher="local", pid=proc.pid, host=socket.gethostname())
    return proc


def start_in_process(run: Run, ctx: Context) -> InProcessRun:
    """The runner inside this interpreter (RUNNING); the caller runs it with :meth:`InProcessRun.run`."""
    runner = InProcessRun(log_path(ctx, run))
    with _active_lock:
        _active[run.id] = runner
    set_state(ctx, run, State.RUNNING, launcher=IN_PROCESS, host=socket.gethostname())
    return runner


# -- finish ----------------------------------------------------------------------------------
def finish_run(run: Run, ctx: Context, exit_code: int | None = None, message: str | None = None) -> Run:
    """Read the RunResult and record the outcome (one transaction): COMPLETED, ERROR or STOPPED."""
    with _active_lock:
        _active.pop(run.id, None)
    _store_logs(run, ctx)
    stored = Run.from_dict(ctx.metadata.get(run.project, "run", run.id), ctx)
    if stored.status.state == State.STOPPED.value:
        run.status = stored.status
        return run
    result_url = ctx.run_url(run.id, RESULT_FILE)
    store = ctx.data_store(result_url)
    if message is not None or not store.exists(result_url):
        if message is None:
            how = (
                f"was killed by signal {-exit_code}"
                if exit_code is not None and exit_code < 0
                else f"exited with code {exit_code}"
            )
            message = f"the runner {how} before writing a result"
        return set_state(ctx, run, State.ERROR, message)
    result = RunResult.from_json(store.read_bytes(result_url))
    if result.state == State.STOPPED.value:  # e.g. a KFP run canceled on its server
        return set_state(ctx, run, State.STOPPED, result.message or "the run was stopped")
    if result.state != "COMPLETED":
        return set_state(ctx, run, State.ERROR, result.message or "the run failed", traceback=result.traceback)
    try:
        creates, output_keys = _registrations(run, result)
    except DigitalHubError as exc:
        _delete_written(ctx, result)
        return set_state(ctx, run, State.ERROR, f"cannot register the run's outputs: {exc}")
    stamp = now_iso()
    run.status.state = State.COMPLETED.value
    run.status.message = None
    run.status.outputs = output_keys  # type: ignore[attr-defined]
    run.status.results = result.results  # type: ignore[attr-defined]
    timings = dict(run.status.get("timings") or {})
    timings.update(
        {
            "completed": stamp,
            "handler_started": result.timings.get("started"),
            "handler_finished": result.timings.get("finished"),
        }
    )
    run.status.timings = timings  # type: ignore[attr-defined]
    run.status.transitions = [*(run.status.get("transitions") or []), {"status": "COMPLETED", "time": stamp}]  # type: ignore[attr-defined]
    run.metadata.updated = stamp
    try:
        ctx.metadata.write(create=creates, update=[("run", run.to_dict())])
    except DigitalHubError as exc:
        _delete_written(ctx, result)
        return set_state(ctx, run, State.ERROR, f"cannot register the run's outputs: {exc}")
    return run


def _registrations(run: Run, result: RunResult) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
    creates: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    output_keys: dict[str, str] = {}

    def register(etype: str, data: dict[str, Any]) -> Entity:
        cls = ENTITY_CLASSES.get(etype)
        if cls is None or etype not in INPUT_TYPES:
            raise EntityError(f"a run cannot produce a {etype}")
        entity = cls.from_dict(data)
        entity.spec = validate_spec(etype, entity.kind, entity.spec)
        if entity.project != run.project:
            raise EntityError(f"{entity.key} belongs to another project than the run")
        entity.add_relationship("produced_by", run.key)
        if entity.id not in seen:
            seen.add(entity.id)
            creates.append((etype, entity.to_dict()))
        return entity

    for item in result.logged:
        register(item["type"], item["entity"])
    for name, item in result.outputs.items():
        if item.get("existing"):
            output_keys[name] = item["entity"]["key"]
        else:
            output_keys[name] = register(item["type"], item["entity"]).key
    return creates, output_keys


def _delete_written(ctx: Context, result: RunResult) -> None:
    root = ctx.data_root.rstrip("/") + "/"
    items = [*result.logged, *(o for o in result.outputs.values() if not o.get("existing"))]
    for item in items:
        path = item["entity"].get("spec", {}).get("path", "")
        if path.startswith(root):
            try:
                ctx.data_store(path).delete(path)
            except DigitalHubError:
                pass


def _store_logs(run: Run, ctx: Context) -> None:
    url = ctx.run_url(run.id, LOG_FILE)
    store = ctx.data_store(url)
    local = log_path(ctx, run)
    if store.local_path(url) is None and local.exists():
        store.upload(local, url)
        local.unlink()


def read_logs(run: Run) -> str:
    ctx = run.ctx
    url = ctx.run_url(run.id, LOG_FILE)
    store = ctx.data_store(url)
    if store.exists(url):
        return store.read_bytes(url).decode("utf-8", errors="replace")
    local = log_path(ctx, run)
    return local.read_text(errors="replace") if local.exists() else ""


def stop_run(run: Run) -> Run:
    """Set the run STOPPED and kill its process (if it is on this machine)."""
    ctx = run.ctx
    run.refresh()
    if State(run.state).final:
        return run
    set_state(ctx, run, State.STOPPED, "stopped by request")
    with _active_lock:
        proc = _active.get(run.id)
    if proc is not None:
        proc.kill()
    elif run.status.get("pid") and run.status.get("host") == socket.gethostname():
        from digitalhub_provider.launchers.local import kill_group

        kill_group(int(run.status.get("pid")))
    if run.kind.startswith("kfp+"):  # its steps run in their own process groups
        from digitalhub_provider.runtimes.kfp.step import stop_step_runs

        stop_step_runs(ctx, run)
    return run


def start_run(run: Run, fn: Executable, ctx: Context, log: Any = print) -> Run | LocalProcess:
    """BUILT, READY and RUNNING on the local launcher: the started process, or the run itself when
    it ended before any process (the build action, or an error)."""
    action = run.kind.split(":")[0].split("+")[1]
    if action != BUILD_ACTION and (fn.kind, action) not in RUNNERS:
        return set_state(ctx, run, State.ERROR, f"action {action!r} of {fn.kind} is not available in this version")
    try:
        python = build_run(run, fn, ctx, log=log)
        if action == BUILD_ACTION:
            return set_state(ctx, run, State.COMPLETED, f"environment ready: {python}")
        url = write_runspec(run, fn, ctx)
    except DigitalHubError as exc:
        return set_state(ctx, run, State.ERROR, str(exc))
    return start_local(run, python, url, ctx, on_line=log)


# -- the SDK's function.run() -----------------------------------------------------------------
def run_executable(
    fn: Executable,
    action: str | None = None,
    wait: bool = True,
    timeout: float | None = None,
    on_log: Any = None,
    **kwargs: Any,
) -> Run:
    ctx = fn.ctx
    run = prepare_run(fn, action=action, ctx=ctx, **kwargs)
    started = start_run(run, fn, ctx, log=on_log if on_log is not None else _print_line)
    if isinstance(started, Run):
        return started
    proc = started

    def complete() -> Run:
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return finish_run(run, ctx, message=f"the run timed out after {timeout} s and was killed")
        return finish_run(run, ctx, exit_code=code)

    if wait:
        return complete()
    threading.Thread(target=complete, name=f"dh-run-{run.id}", daemon=False).start()
    return run


def _print_line(line: str) -> None:
    print(line, file=sys.stdout, flush=True)
