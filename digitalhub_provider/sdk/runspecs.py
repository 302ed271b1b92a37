"""What a run is made of, before it runs: the checked call, its task, and the RunSpec.

No run status is written here: :mod:`.controller` inserts the run this builds
and moves it through its states.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

from digitalhub_provider.assets import SCHEME as ASSET_SCHEME
from digitalhub_provider.assets import parse_asset_uri
from digitalhub_provider.entities import ENTITY_CLASSES, Entity, Run, RunKind, State, Task
from digitalhub_provider.entities.executable import Executable
from digitalhub_provider.entities.keys import function_ref, is_key, parse_key, validate_name
from digitalhub_provider.entities.specs import TASK_FIELDS, TASK_KINDS, plain_run_spec, validate_spec
from digitalhub_provider.errors import EntityError, EntityNotFoundError
from digitalhub_provider.launchers.k8s_spec import check_task_arguments
from digitalhub_provider.runtimes.contract import RESULT_FILE, RUNSPEC_FILE, RunSpec
from digitalhub_provider.runtimes.registry import BUILD_ACTION, SERVE_ACTION, source_fields
from digitalhub_provider.sdk.cache import cache_policy, fingerprint
from digitalhub_provider.sdk.context import Context
from digitalhub_provider.stores import crud

INPUT_TYPES = ("dataitem", "artifact", "model")
SERVE_FIELDS = ("replicas", "service_type", "service_name", "host", "port")


def default_action(kind: str) -> str:
    return TASK_KINDS.get(kind, ("job",))[0]


def new_run(
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
    init_parameters: dict[str, Any] | None = None,
    cache: Any = None,
    **task_params: Any,
) -> Run:
    """Check the call, create (or reuse) the task, and build the run (CREATED, not yet saved).

    ``relationships`` are added to ``run_of`` and ``consumes`` (a kfp step passes ``step_of``).
    ``init_parameters`` (DigitalHub's current SDK's name for a service's init arguments) are the
    ``parameters``, which a service passes to its init function. ``cache`` (True, or ``{"max_age":
    seconds}``) lets the run reuse an identical earlier run's outcome (:mod:`.cache`)."""
    ctx = ctx or fn.ctx
    action = action or default_action(fn.kind)
    if action not in TASK_KINDS.get(fn.kind, ()):
        raise EntityError(
            f"action {action!r} is not one of {fn.kind}'s actions: {', '.join(TASK_KINDS.get(fn.kind, ()))}"
        )
    if init_parameters is not None:
        if parameters is not None:
            raise EntityError("give parameters or init_parameters (the same thing for a service), not both")
        parameters = init_parameters
    serving = {k for k in SERVE_FIELDS if task_params.get(k) is not None}
    if serving and action != SERVE_ACTION:
        raise EntityError(f"{', '.join(sorted(serving))}: argument(s) of the serve action, not of {action}")
    instructions = task_params.get("instructions")
    if instructions is not None and action != BUILD_ACTION:
        raise EntityError(f"instructions: an argument of the {BUILD_ACTION} action, not of {action}")
    if instructions is not None and (
        not isinstance(instructions, list) or not all(isinstance(i, str) and i.strip() for i in instructions)
    ):
        raise EntityError(f"instructions must be a list of shell command lines, got {instructions!r}")
    if action == SERVE_ACTION and task_params.get("replicas") is not None and task_params["replicas"] < 1:
        raise EntityError(f"replicas must be 1 or more for a service, got {task_params['replicas']}")
    unknown = sorted(set(task_params) - set(TASK_FIELDS))
    if unknown:
        raise EntityError(f"unknown run argument(s) {', '.join(map(repr, unknown))}")
    if parameters is not None and not isinstance(parameters, dict):
        raise EntityError(f"parameters must be a dictionary, got {type(parameters).__name__}")
    for name, value in (parameters or {}).items():
        check_json_value(value, f"parameter {name!r}")
    if inputs is not None and not isinstance(inputs, dict):
        raise EntityError(
            f"inputs must be a dictionary of input name to entity key, got {type(inputs).__name__}: "
            "inputs={'name': 'store://...'}"
        )
    check_outputs(outputs)
    kind = RunKind(fn.kind, action)
    given = {k: v for k, v in task_params.items() if v is not None}
    # Without run arguments the task's spec is the function's key, nothing a model could reject.
    task_spec = validate_spec("task", kind.task_kind, {"function": fn.key, **given}) if given else {"function": fn.key}
    if given:  # their types are right: now the rules a pod would apply, whatever runs the task
        check_task_arguments(given)
    input_keys = {name: resolve_input(name, ref, fn.project, ctx).key for name, ref in (inputs or {}).items()}
    task = _ensure_task(fn, kind.task_kind, task_spec, ctx)
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
    policy = cache_policy(cache)
    if policy is not None:
        if action in (SERVE_ACTION, BUILD_ACTION):
            raise EntityError(f"cache applies to runs that compute outputs, not to the {action} action")
        run_spec["cache"] = {"key": fingerprint(fn, action, run_spec), **policy}
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
        kind=kind.run_kind,
        spec=run_spec if plain is None else plain,
        labels=labels,
        relationships=rels,
        status={"state": State.CREATED.value},
        spec_checked=plain is not None,
    )
    run._ctx = ctx
    stamp = run.metadata.created
    run.status.timings = {"created": stamp}  # type: ignore[attr-defined]
    run.status.transitions = [{"status": State.CREATED.value, "time": stamp}]  # type: ignore[attr-defined]
    return run


def check_json_value(value: Any, what: str) -> None:
    """Parameters are stored and passed as JSON: a value JSON cannot hold as it is (NaN, a datetime, a
    set, an object) is refused with its name, rather than converted behind the user's back."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EntityError(f"{what} is {value!r}: JSON has no NaN or infinity; pass None or a number")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json_value(item, f"{what}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EntityError(f"{what} has the key {key!r}: JSON object keys are strings")
            check_json_value(item, f"{what}[{key!r}]")
        return
    hint = {
        "datetime": "pass value.isoformat()",
        "date": "pass value.isoformat()",
        "set": "pass a sorted list",
        "frozenset": "pass a sorted list",
        "Decimal": "pass a str or a float",
        "bytes": "pass a str (base64 for binary data)",
    }.get(type(value).__name__, "pass a JSON value: None, bool, int, float, str, list or dict")
    if type(value).__module__ == "numpy":
        hint = "pass value.item() (or value.tolist() for an array)"
    raise EntityError(f"{what} is a {type(value).__name__} ({value!r}), which JSON cannot hold: {hint}")


def check_outputs(outputs: Any) -> None:
    """Output names become entity names and data store paths: each is checked before anything runs."""
    if outputs is None:
        return
    if isinstance(outputs, dict):
        for source, name in outputs.items():
            validate_name(source, "output name")
            validate_name(name, f"name for output {source!r}")
    elif isinstance(outputs, list | tuple):
        for name in outputs:
            validate_name(name, "output name")
        if len(set(outputs)) != len(outputs):
            raise EntityError(f"outputs has duplicate names: {list(outputs)}")
    else:
        raise EntityError(f"outputs must be a list of names or a dictionary of renames, got {type(outputs).__name__}")


def resolve_input(name: str, ref: Any, project: str, ctx: Context) -> Entity:
    """The entity an input names: an entity, its key (that version), or its Asset (an Airflow
    ``Asset`` or its ``digitalhub://`` URI: the latest version, recorded as its key on the run)."""
    key = ref.key if isinstance(ref, Entity) else getattr(ref, "uri", ref)
    if isinstance(key, str) and key.startswith(f"{ASSET_SCHEME}://"):
        return _latest_of_asset(name, key, ctx)
    if not is_key(key):
        raise EntityError(
            f"input {name!r} must be an entity key (store://...) or a {ASSET_SCHEME}:// asset, got {key!r}"
        )
    parsed = parse_key(key)
    if parsed.entity_type not in INPUT_TYPES:
        raise EntityError(f"input {name!r} is a {parsed.entity_type}: inputs must be dataitems, artifacts or models")
    try:
        return crud.get_entity(ENTITY_CLASSES[parsed.entity_type], key, ctx=ctx)
    except EntityNotFoundError:
        raise EntityNotFoundError(f"input {name!r}: {key} not found") from None


def _latest_of_asset(name: str, uri: str, ctx: Context) -> Entity:
    try:
        project, entity_type, entity_name = parse_asset_uri(uri)
    except ValueError as exc:
        raise EntityError(f"input {name!r}: {exc}") from None
    try:
        return crud.get_entity(ENTITY_CLASSES[entity_type], entity_name, project=project, ctx=ctx)
    except EntityNotFoundError:
        raise EntityNotFoundError(f"input {name!r}: {uri} names no {entity_type} (none of that name yet)") from None


def _ensure_task(fn: Executable, kind: str, spec: dict[str, Any], ctx: Context) -> Task:
    for existing in ctx.metadata.list(fn.project, "task", function_name=fn.name, kind=kind, limit=50):
        if existing.get("spec") == spec:
            return Task.from_dict(existing, ctx)
    task = Task.build(project=fn.project, name="task", kind=kind, spec=spec)
    ctx.insert("task", task.to_dict())
    return task


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


def executable_of(run: Run, ctx: Context) -> Executable:
    """The function (or workflow) version ``run`` belongs to, with its spec in this platform's form: a
    run created through the REST API by DigitalHub Core's SDK points to its function as
    ``python://project/name:id``, and that function's code is under ``source`` (see
    :func:`~digitalhub_provider.entities.specs.core.core_spec`)."""
    from digitalhub_provider.entities.specs.core import core_spec

    etype = "workflow" if run.spec.get("workflow") and not run.spec.get("function") else "function"
    ref = run.spec.get(etype)
    name, fid = function_ref(ref)
    if name is None:
        raise EntityError(f"run {run.id}: spec.{etype} {ref!r} names no {etype} (kind://project/name:id)")
    try:
        body = ctx.metadata.get(run.project, etype, fid) if fid else ctx.metadata.get_latest(run.project, etype, name)
    except EntityNotFoundError:
        raise EntityNotFoundError(f"run {run.id}: its {etype} {ref} does not exist") from None
    fn: Executable = ENTITY_CLASSES[etype].from_dict(body, ctx)  # type: ignore[assignment]
    fn.spec = validate_spec(etype, fn.kind, core_spec(etype, fn.kind, fn.spec))
    return fn


def build_runspec(run: Run, fn: Executable, ctx: Context) -> RunSpec:
    """The RunSpec of ``run``: every input key resolved to its entity (no side effect)."""
    inputs = {}
    for name, key in (run.spec.get("inputs") or {}).items():
        entity = crud.get_entity_by_key(key, ctx=ctx)
        inputs[name] = {"type": entity.ENTITY_TYPE, "entity": entity.to_dict()}
    kind = run.run_kind
    return RunSpec(
        run_id=run.id,
        run_key=run.key,
        project=run.project,
        runtime=kind.runtime,
        action=kind.action,
        function=fn.to_dict(),
        source=source_of(fn),
        handler=fn.spec.get("handler"),
        inputs=inputs,
        parameters=run.spec.get("parameters") or {},
        outputs=run.spec.get("outputs"),
        values=run.spec.get("values"),
        data_url=ctx.data_root,
        result_url=ctx.run_url(run.id, RESULT_FILE),
        service=service_of(run) if kind.action == SERVE_ACTION else None,
    )


def service_of(run: Run) -> dict[str, Any]:
    """Where a local service listens: the run's ``host`` (default 127.0.0.1) and ``port`` (default a
    free one, chosen now), with its worker processes (``replicas``)."""
    import socket

    host = str(run.spec.get("host") or "127.0.0.1")
    port = run.spec.get("port") or 0
    if not port:
        try:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((host, 0))
                port = probe.getsockname()[1]
        except OSError as exc:
            raise EntityError(f"the service cannot listen on host {host!r}: {exc.strerror or exc}") from None
    return {"host": host, "port": int(port), "replicas": int(run.spec.get("replicas") or 1)}


def store_runspec(spec: RunSpec, ctx: Context, spec_json: bytes | None = None) -> str:
    """Write ``spec`` to the data store and return its URL. Touches neither the run nor the metadata
    store, so it may run in a helper thread. (A run is READY once: no earlier result can be next to it.)"""
    url = ctx.run_url(spec.run_id, RUNSPEC_FILE)
    store = ctx.data_store(url)
    store.write_bytes(url, spec_json if spec_json is not None else spec.to_json())
    return url
