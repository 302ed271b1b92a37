"""The python runtime's ``job`` action, inside the runner.

1. fetch the source and import the handler;
2. compose its arguments: ``project`` (a Project bound to the run),
   ``inputs`` as Dataitem / Artifact / Model objects, ``parameters`` by name;
3. call it and map what it returns to outputs and results;
4. on any error delete the data this run already wrote, so nothing is left
   half-written, and report ERROR with the message and traceback.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import sys
import tempfile
import threading
import traceback
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitalhub_provider.errors import DigitalHubError, RunError
from digitalhub_provider.runtimes.context import RunnerContext
from digitalhub_provider.runtimes.contract import RunResult, RunSpec, is_interrupt
from digitalhub_provider.runtimes.python.handler import declared_outputs
from digitalhub_provider.runtimes.python.sources import fetch_source, load_handler
from digitalhub_provider.states import State

if TYPE_CHECKING:
    from digitalhub_provider.entities import Entity

# The entity models (pydantic) are imported only by a run that has inputs, a ``project``
# argument or data outputs: a handler that takes parameters and returns primitives does
# not pay their ~0.2 s import.

RESERVED_SERVE = ("context", "event", "events")


class HandlerFailed(Exception):
    """The user's handler raised: its own message and traceback are reported."""


def run_job(spec: RunSpec, ctx: RunnerContext) -> RunResult:
    written: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix=f"dh-run-{spec.run_id[:8]}-") as workdir:
            location = fetch_source(spec.source, Path(workdir), ctx)
            fn = load_handler(location, spec.handler or "")
            kwargs = compose_arguments(fn, spec, ctx)
            try:
                returned = fn(**kwargs)
            except Exception as exc:
                tb = traceback.format_exc()
                raise HandlerFailed(f"handler {spec.handler!r} raised {type(exc).__name__}: {exc}", tb) from exc
            outputs, results = map_outputs(fn, returned, spec, ctx, written)
        return RunResult(
            run_id=spec.run_id, state=State.COMPLETED.value, outputs=outputs, results=results, logged=ctx.logged
        )
    except BaseException as exc:
        _cleanup(ctx, written)
        if is_interrupt(exc):
            raise
        if isinstance(exc, HandlerFailed):
            message, tb = exc.args
        else:
            message, tb = (
                (str(exc) if isinstance(exc, DigitalHubError) else f"{type(exc).__name__}: {exc}"),
                traceback.format_exc(),
            )
        return RunResult(run_id=spec.run_id, state=State.ERROR.value, message=message, traceback=tb)


def _cleanup(ctx: RunnerContext, written: list[str]) -> None:
    paths = written + [r["entity"]["spec"]["path"] for r in ctx.logged if r["entity"].get("spec", {}).get("path")]
    for path in paths:
        store = ctx.data_store(path)
        if store.read_only or not path.startswith(ctx.data_root.rstrip("/") + "/"):
            continue  # never delete what this run did not write
        try:
            store.delete(path)
        except Exception:
            pass
    ctx.logged.clear()


# -- arguments ------------------------------------------------------------------------------
def compose_arguments(fn: Any, spec: RunSpec, ctx: RunnerContext) -> dict[str, Any]:
    sig = inspect.signature(fn)
    params = sig.parameters
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for name in [*spec.inputs, *spec.parameters]:
        if name not in params and not accepts_kwargs:
            raise RunError(
                f"{name!r} is not an argument of handler {spec.handler!r} "
                f"(its arguments: {', '.join(params) or 'none'})"
            )
    kwargs: dict[str, Any] = {}
    for name, param in params.items():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if name == "project":
            kwargs[name] = project_for(spec, ctx)
        elif name in spec.inputs:
            kwargs[name] = _input_object(name, spec.inputs[name], param, ctx)
        elif name in spec.parameters:
            kwargs[name] = spec.parameters[name]
        elif name in RESERVED_SERVE:
            kwargs[name] = None  # reserved for serve; a job gets none
        elif param.default is inspect.Parameter.empty:
            raise RunError(f"handler argument {name!r} is missing: map it in inputs (an entity key) or parameters")
    if accepts_kwargs:
        for name, value in spec.parameters.items():
            kwargs.setdefault(name, value)
        for name, ref in spec.inputs.items():
            kwargs.setdefault(name, _input_object(name, ref, None, ctx))
    return kwargs


def project_for(spec: RunSpec, ctx: RunnerContext) -> Entity:
    """The reserved ``project`` argument: the run's project, working in the runner's context."""
    from digitalhub_provider.entities import Project
    from digitalhub_provider.entities.base import Metadata

    project = Project(
        id=spec.project,
        name=spec.project,
        kind="project",
        project=spec.project,
        metadata=Metadata(project=spec.project, name=spec.project),
    )
    project._ctx = ctx
    return project


def _input_object(name: str, ref: dict[str, Any], param: inspect.Parameter | None, ctx: RunnerContext) -> Entity:
    from digitalhub_provider.entities import ENTITY_CLASSES, Artifact, Dataitem, Entity, Model

    etype = ref["type"]
    entity = ENTITY_CLASSES[etype].from_dict(ref["entity"], ctx)
    wanted = param.annotation if param is not None else inspect.Parameter.empty
    if isinstance(wanted, str):
        wanted = {"Dataitem": Dataitem, "Artifact": Artifact, "Model": Model}.get(wanted.rsplit(".", 1)[-1], wanted)
    if isinstance(wanted, type) and issubclass(wanted, Entity) and not isinstance(entity, wanted):
        raise RunError(f"input {name!r} is a {etype} but the handler expects a {wanted.ENTITY_TYPE}")
    return entity


# -- outputs --------------------------------------------------------------------------------
def map_outputs(
    fn: Any, returned: Any, spec: RunSpec, ctx: RunnerContext, written: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    names = declared_outputs(fn)
    if names is None and isinstance(spec.outputs, list):
        names = list(spec.outputs)
    rename = spec.outputs if isinstance(spec.outputs, dict) else {}
    if returned is None and not names:
        return {}, {}
    if names:
        values = list(returned) if isinstance(returned, tuple) else [returned]
        if len(values) > len(names):
            raise RunError(f"handler returned {len(values)} values but declares {len(names)} output names {names}")
        if len(values) < len(names):
            raise RunError(f"handler declares {len(names)} outputs {names} but returned {len(values)} values")
    else:
        values = list(returned) if isinstance(returned, tuple) else [returned]
        names = [f"output_{i}" if len(values) > 1 else "output" for i in range(len(values))]
    outputs: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {}
    for name, value in zip(names, values, strict=False):
        name = rename.get(name, name)
        value = _plain(value)
        if _is_dataframe(value):
            outputs[name] = _dataframe_output(name, value, spec, ctx, written)
        elif _is_entity(value):
            outputs[name] = {"type": value.ENTITY_TYPE, "entity": value.to_dict(), "existing": not _logged(ctx, value)}
        elif _is_primitive(value):
            results[name] = value
        else:
            outputs[name] = _pickled_output(name, value, spec, ctx, written)
    return outputs, results


def _is_entity(value: Any) -> bool:
    """An entity object; if the entity models were never imported, the value cannot be one."""
    base = sys.modules.get("digitalhub_provider.entities.base")
    return base is not None and isinstance(value, base.Entity)


def _logged(ctx: RunnerContext, entity: Entity) -> bool:
    return any(r["entity"]["id"] == entity.id for r in ctx.logged)


def _is_dataframe(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame"


def _plain(value: Any) -> Any:
    """numpy scalars (``np.int64(3)``) become the Python values they stand for."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _is_primitive(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_primitive(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_primitive(v) for k, v in value.items())
    return False


def _dataframe_output(name: str, df: Any, spec: RunSpec, ctx: RunnerContext, written: list[str]) -> dict[str, Any]:
    from digitalhub_provider.stores.data.tables import write_df

    # The entity models' import (~0.2 s of Python) runs while pyarrow, which releases the GIL, writes.
    models = threading.Thread(target=importlib.import_module, args=("digitalhub_provider.entities",), daemon=True)
    models.start()
    entity_id = uuid.uuid4().hex  # as entities.base.new_id
    path = ctx.material_url(spec.project, "dataitem", name, entity_id, "data.parquet")
    written.append(path)
    write_df(ctx, df, path)
    models.join()
    from digitalhub_provider.entities import Dataitem

    entity = Dataitem.build(
        project=spec.project,
        name=name,
        kind="table",
        uuid=entity_id,
        spec={"path": path, "schema": {"fields": [{"name": str(c), "type": str(t)} for c, t in df.dtypes.items()]}},
        status={"state": State.CREATED.value, "rows": len(df)},
    )
    return {"type": "dataitem", "entity": entity.to_dict()}


def _pickled_output(name: str, value: Any, spec: RunSpec, ctx: RunnerContext, written: list[str]) -> dict[str, Any]:
    try:
        payload = pickle.dumps(value)
    except Exception as exc:
        raise RunError(f"output {name!r} ({type(value).__name__}) cannot be pickled: {exc}") from None
    from digitalhub_provider.entities import Artifact
    from digitalhub_provider.entities.base import new_id

    entity_id = new_id()
    path = ctx.material_url(spec.project, "artifact", name, entity_id, f"{name}.pickle")
    written.append(path)
    with tempfile.NamedTemporaryFile(suffix=".pickle") as tmp:
        tmp.write(payload)
        tmp.flush()
        ctx.data_store(path).upload(tmp.name, path)
    entity = Artifact.build(project=spec.project, name=name, kind="artifact", uuid=entity_id, spec={"path": path})
    return {"type": "artifact", "entity": entity.to_dict()}
