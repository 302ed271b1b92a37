"""The mlrun runtime's ``job`` action, inside the runner (the mlrun environment).

The seed's workflow:

1. fetch the source and the inputs: every input (dataitem, artifact, model) becomes a
   local file MLRun can read (files on a local data store are used in place);
2. create an MLRun project and function (``get_or_create_project`` with the run's
   working directory as context, ``set_function`` on the fetched file);
3. run it with MLRun, locally (``local=True``, no API server: :mod:`.rundb` keeps the
   run record and artifacts in memory), with ``parameters`` as MLRun params, the local
   input paths as MLRun inputs and an output path under the run's working directory;
4. parse the outcome: anything but ``completed`` is ERROR with MLRun's own message;
   MLRun artifacts become platform entities (dataset -> dataitem ``table`` stored as
   Parquet, model -> model, anything else -> artifact), named as MLRun logged them or
   renamed through ``outputs`` (``{"mlrun name": "our name"}``); the MLRun results named
   in ``values`` (all of them when ``values`` is not given) become run results, and the
   raw MLRun run record is kept as the result ``mlrun_run``;
5. when an MLRun API server is named (``DIGITALHUB_MLRUN_API``, the connection's ``mlrun_api``),
   register the run there after it ran (:mod:`.register`): the project, the artifacts (pointing
   at the platform's copies) and the run record (also a failed run's record); the result
   ``mlrun_api`` says where (the server's URL, without credentials);
6. on any error delete what this run already uploaded: nothing is left half-written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digitalhub_provider.entities import Artifact, Dataitem, Model
from digitalhub_provider.entities.base import new_id
from digitalhub_provider.entities.keys import validate_name
from digitalhub_provider.errors import DigitalHubError, RunError
from digitalhub_provider.runtimes.context import RunnerContext
from digitalhub_provider.runtimes.contract import RunResult, RunSpec, is_interrupt
from digitalhub_provider.runtimes.python.sources import DEFAULT_FILENAME, fetch_source
from digitalhub_provider.states import State

MLRUN_RUN_RESULT = "mlrun_run"
MLRUN_API_RESULT = "mlrun_api"
DEFAULT_IMAGE = "mlrun/mlrun"
PARQUET_SUFFIXES = (".parquet", ".pq")
DATA_FIELDS = ("preview", "stats")  # an MLRun artifact's status fields that hold data
FAILED_STATES = ("error", "aborted")


class MlrunRunFailed(Exception):
    """The MLRun run ended in a state other than ``completed``: MLRun's message and traceback
    (``args``), and MLRun's run record (``record``)."""

    def __init__(self, message: str, tb: str | None, record: dict[str, Any] | None = None) -> None:
        super().__init__(message, tb)
        self.record = record or {}


def run_job(spec: RunSpec, ctx: RunnerContext) -> RunResult:
    written: list[str] = []
    api, token = ctx.settings.mlrun_api, ctx.settings.mlrun_token
    try:
        with tempfile.TemporaryDirectory(prefix=f"dh-mlrun-{spec.run_id[:8]}-") as tmp:
            workdir = Path(tmp)
            location = fetch_code(spec, _mkdir(workdir / "code"), ctx)
            code, func = locate_handler(location, spec.handler or "")
            inputs = fetch_inputs(spec, _mkdir(workdir / "inputs"), ctx)
            root = location if location.is_dir() else location.parent
            record, artifacts = run_mlrun(spec, code, func, inputs, workdir, root)
            placed: dict[str, str] = {}
            outputs, results = map_outputs(
                spec, record, artifacts, ctx, written, _mkdir(workdir / "bodies"), placed=placed
            )
        if api:
            from digitalhub_provider.runtimes.mlrun.register import register_run

            results[MLRUN_API_RESULT] = register_run(api, token, spec.project, record, artifacts, placed)
        return RunResult(run_id=spec.run_id, state=State.COMPLETED.value, outputs=outputs, results=results)
    except BaseException as exc:
        _cleanup(ctx, written)
        if is_interrupt(exc):  # a stop or a timeout: the runner records it, as for every runtime
            raise
        if isinstance(exc, MlrunRunFailed):
            message, tb = exc.args
            if api and exc.record:
                message = _register_failed(api, token, spec.project, exc.record, message)
        else:
            message = str(exc) if isinstance(exc, DigitalHubError) else f"{type(exc).__name__}: {exc}"
            tb = traceback.format_exc()
        return RunResult(run_id=spec.run_id, state=State.ERROR.value, message=message, traceback=tb)


def _register_failed(api: str, token: str | None, project: str, record: dict[str, Any], message: str) -> str:
    """Register a failed MLRun run's record (its artifacts were never uploaded: they are not);
    the run's message says where it was registered, or why it was not."""
    from digitalhub_provider.runtimes.mlrun.register import RegistrationError, register_run

    try:
        where = register_run(api, token, project, record, [], {})
    except RegistrationError as exc:
        return f"{message}; and {exc}"
    return f"{message} (run registered with the MLRun API server {where})"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cleanup(ctx: RunnerContext, written: list[str]) -> None:
    root = ctx.data_root.rstrip("/") + "/"
    for path in reversed(written):
        store = ctx.data_store(path)
        if store.read_only or not path.startswith(root):
            continue  # never delete what this run did not write
        try:
            store.delete(path)
        except Exception:
            pass


# -- source and inputs ----------------------------------------------------------------------
def fetch_code(spec: RunSpec, folder: Path, ctx: RunnerContext) -> Path:
    """The python runtime's sources (inline, git+, zip+s3://, zip+file://, http(s)://)."""
    try:
        return fetch_source(spec.source, folder, ctx)
    except RunError:
        raise
    except DigitalHubError as exc:
        raise RunError(f"cannot fetch the source {spec.source.get('url', '')!r}: {exc}") from None


def locate_handler(location: Path, handler: str) -> tuple[Path, str]:
    """The file and function MLRun runs: ``function`` (in the source file, or ``main.py`` of
    an archive) or ``module:function`` (``module`` may be dotted, relative to the source root)."""
    if not handler:
        raise RunError("the function has no handler: set handler='function' or 'module:function'")
    module, _, func = handler.rpartition(":")
    if not func.isidentifier():
        raise RunError(f"handler {handler!r} is not 'function' or 'module:function'")
    root = location if location.is_dir() else location.parent
    if not module:
        file = location if location.is_file() else root / DEFAULT_FILENAME
        if not file.is_file():
            raise RunError(f"handler {handler!r} names no module and the source has no {DEFAULT_FILENAME}")
        return file, func
    rel = Path(*module.split("."))
    for file in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if file.is_file():
            return file, func
    raise RunError(f"handler {handler!r}: module {module!r} is not in the source")


def fetch_inputs(spec: RunSpec, folder: Path, ctx: RunnerContext) -> dict[str, str]:
    """Each input as a local path MLRun can read (its file name, so its format, kept)."""
    local: dict[str, str] = {}
    for name, ref in spec.inputs.items():
        path = str(ref["entity"].get("spec", {}).get("path") or "")
        if not path:
            raise RunError(f"input {name!r} ({ref['type']}) has no path")
        store = ctx.data_store(path)
        in_place = store.local_path(path)
        if in_place is not None and in_place.exists():
            local[name] = str(in_place)
            continue
        filename = Path(path.split("?", 1)[0].rstrip("/")).name or name
        try:
            local[name] = str(store.download(path, folder / name / filename))
        except DigitalHubError as exc:
            raise RunError(f"cannot fetch input {name!r} from {path!r}: {exc}") from None
    return local


# -- the MLRun run ---------------------------------------------------------------------------
def mlrun_name(name: str) -> str:
    """A name MLRun accepts for a function (lower-case letters, digits and '-')."""
    clean = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return clean[:63].strip("-") or "function"


class _TracebackCatcher(logging.Handler):
    """MLRun logs a failing handler's traceback ("Execution error, Traceback ...") instead of raising."""

    PREFIXES = ("Execution error, ", "Run error, ")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for prefix in self.PREFIXES:
            if message.startswith(prefix):
                self.tracebacks.append(message[len(prefix) :])


@contextlib.contextmanager
def _inside(workdir: Path, code_root: Path) -> Iterator[None]:
    """Run MLRun in the run's working directory: files the handler writes with relative paths
    and MLRun's temporary files go there and are removed with it; the source root is importable."""
    old_cwd, old_tmp = os.getcwd(), tempfile.tempdir
    tempfile.tempdir = str(_mkdir(workdir / "tmp"))
    sys.path.insert(0, str(code_root))
    os.chdir(code_root)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        tempfile.tempdir = old_tmp
        with contextlib.suppress(ValueError):
            sys.path.remove(str(code_root))


def run_mlrun(
    spec: RunSpec, code: Path, func: str, inputs: dict[str, str], workdir: Path, root: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the handler with MLRun locally; return MLRun's run record and the artifacts it logged.

    ``root`` is the source's root folder (an archive's): importable, and the handler's working directory."""
    os.environ.pop("MLRUN_DBPATH", None)  # a local run: never an MLRun API server
    import mlrun

    from digitalhub_provider.runtimes.mlrun import rundb

    db = rundb.install()
    fn_spec = spec.function.get("spec") or {}
    catcher = _TracebackCatcher()
    mlrun_logger = logging.getLogger("mlrun")
    mlrun_logger.addHandler(catcher)
    try:
        with _inside(workdir, root):
            project = mlrun.get_or_create_project(
                spec.project, context=str(_mkdir(workdir / "project")), allow_cross_project=True, save=False
            )
            function = project.set_function(
                str(code),
                name=mlrun_name(str(spec.function.get("name") or "function")),
                kind="job",
                handler=func,
                image=_mlrun_image(fn_spec.get("image")),
                tag=fn_spec.get("tag") or "",
            )
            try:
                run = project.run_function(
                    function,
                    handler=func,
                    params=dict(spec.parameters),
                    inputs=inputs,
                    local=True,
                    output_path=str(_mkdir(workdir / "artifacts")),
                )
                record = run.to_dict()
            except Exception:
                # MLRun raises when the run it recorded ended in error: its record says why.
                record = list(db.runs.values())[-1] if db.runs else {}
                if (record.get("status") or {}).get("state") not in FAILED_STATES:
                    raise
    finally:
        mlrun_logger.removeHandler(catcher)
    status = record.get("status") or {}
    state = status.get("state") or "unknown"
    if state != "completed":
        error = status.get("error") or status.get("status_text") or "MLRun gave no error message"
        tb = "\n".join(catcher.tracebacks) or None
        name = record.get("metadata", {}).get("name", "")
        raise MlrunRunFailed(f"the MLRun run {name} ended {state}: {error}", tb, record)
    uid = record.get("metadata", {}).get("uid", "")
    artifacts = status.get("artifacts") or db.artifacts_of(uid)
    return record, [a for a in artifacts if a]


# -- outputs and results -----------------------------------------------------------------------
def map_outputs(
    spec: RunSpec,
    record: dict[str, Any],
    artifacts: list[dict[str, Any]],
    ctx: RunnerContext,
    written: list[str],
    scratch: Path,
    placed: dict[str, str] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """MLRun artifacts -> entities (renamed through ``outputs``); MLRun results -> run results.

    Every name asked for is checked before anything is uploaded. ``placed`` (when given) is filled
    with each artifact's MLRun key -> the path of the entity it became."""
    produced = {str(a.get("metadata", {}).get("key")): a for a in artifacts}
    mlrun_results: dict[str, Any] = (record.get("status") or {}).get("results") or {}
    rename = dict(spec.outputs) if isinstance(spec.outputs, dict) else {}
    wanted = list(spec.outputs) if isinstance(spec.outputs, list) else list(rename)
    for key in wanted:
        if key not in produced:
            hint = f" ({key!r} is a result: name it in values)" if key in mlrun_results else ""
            raise RunError(
                f"output {key!r} was not produced by the MLRun run{hint}; "
                f"its artifacts: {', '.join(sorted(produced)) or 'none'}"
            )
    for key in spec.values or []:
        if key not in mlrun_results:
            hint = f" ({key!r} is an artifact: it is an output)" if key in produced else ""
            known = ", ".join(sorted(mlrun_results)) or "none"
            raise RunError(f"value {key!r} is not a result of the MLRun run{hint}; its results: {known}")
    names = {key: rename.get(key, key) for key in produced}
    for name in names.values():
        validate_name(name, "output name")
    clashes = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
    if clashes:
        raise RunError(f"two MLRun artifacts would become the output {clashes[0]!r}: rename one through outputs")

    outputs: dict[str, dict[str, Any]] = {}
    for key, artifact in produced.items():
        out = artifact_output(names[key], artifact, spec, ctx, written, scratch)
        entity = out["entity"]
        print(f"MLRun artifact {key!r} -> {out['type']} {entity['name']!r} at {entity['spec']['path']}", flush=True)
        outputs[names[key]] = out
        if placed is not None:
            placed[key] = str(entity["spec"]["path"])
    keep = spec.values if spec.values is not None else list(mlrun_results)
    results = {key: _json_safe(mlrun_results[key]) for key in keep}
    results[MLRUN_RUN_RESULT] = _json_safe(run_record(record))
    return outputs, results


def run_record(record: dict[str, Any]) -> dict[str, Any]:
    """MLRun's run record as a result: the artifacts' data previews and column statistics are
    left out (results travel through XCom, and data never does)."""
    record = json.loads(json.dumps(record, default=str))
    for artifact in (record.get("status") or {}).get("artifacts") or []:
        status = artifact.get("status") or {}
        for field in DATA_FIELDS:
            status.pop(field, None)
    return record


def _json_safe(value: Any) -> Any:
    """Plain JSON: NaN and infinities (MLRun statistics have them) become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.loads(json.dumps(value, default=str))


def artifact_output(
    name: str, artifact: dict[str, Any], spec: RunSpec, ctx: RunnerContext, written: list[str], scratch: Path
) -> dict[str, Any]:
    kind = artifact.get("kind") or "artifact"
    aspec = artifact.get("spec") or {}
    target = str(aspec.get("target_path") or "")
    local = _local_target(target, str(artifact.get("metadata", {}).get("key")))
    if kind == "dataset":
        return _dataset_output(name, target, local, spec, ctx, written)
    entity_type = "model" if kind == "model" else "artifact"
    entity_id = new_id()
    folder = ctx.material_url(spec.project, entity_type, name, entity_id, "")
    if local is None and target:
        path = target  # already somewhere else (s3://, http://...): recorded as it is, not copied
    else:
        if local is None:  # an inline artifact: MLRun kept its body in the spec
            body = aspec.get("body")
            if body is None:
                raise RunError(f"MLRun artifact {artifact.get('metadata', {}).get('key')!r} has no data")
            local = scratch / f"{name}.{aspec.get('format') or 'txt'}"
            local.write_bytes(body.encode() if isinstance(body, str) else bytes(body))
        written.append(folder)
        main = _upload(local, folder, ctx, aspec.get("model_file") if kind == "model" else None)
        path = ctx.material_url(spec.project, entity_type, name, entity_id, main)
    if kind == "model":
        extra = {f: aspec[f] for f in ("framework", "algorithm", "parameters", "metrics") if aspec.get(f)}
        model = Model.build(project=spec.project, name=name, kind="model", uuid=entity_id, spec={"path": path, **extra})
        return {"type": "model", "entity": model.to_dict()}
    art = Artifact.build(project=spec.project, name=name, kind="artifact", uuid=entity_id, spec={"path": path})
    return {"type": "artifact", "entity": art.to_dict()}


def _local_target(target: str, key: str) -> Path | None:
    """The local file or folder MLRun wrote, or None for a remote target or an inline artifact."""
    if target.startswith("file://"):
        target = target[len("file://") :]
    if not target or "://" in target:
        return None
    path = Path(target)
    if not path.exists():
        raise RunError(f"MLRun artifact {key!r}: no file at {target!r}")
    return path


def _upload(local: Path, folder: str, ctx: RunnerContext, main_file: str | None) -> str:
    """Upload a file, or every file of a folder (a model's folder: its file and model_spec.yaml),
    under ``folder``; return the path, relative to it, of the file the entity points at."""
    if local.is_file():
        ctx.data_store(folder).upload(local, f"{folder.rstrip('/')}/{local.name}")
        return local.name
    files = sorted(p for p in local.rglob("*") if p.is_file())
    if not files:
        raise RunError(f"MLRun wrote no file in {local.name!r}")
    for file in files:
        rel = file.relative_to(local).as_posix()
        ctx.data_store(folder).upload(file, f"{folder.rstrip('/')}/{rel}")
    if main_file and (local / main_file).is_file():
        return main_file
    return "" if len(files) > 1 else files[0].relative_to(local).as_posix()


def _dataset_output(
    name: str, target: str, local: Path | None, spec: RunSpec, ctx: RunnerContext, written: list[str]
) -> dict[str, Any]:
    """A dataset becomes a dataitem of kind table, Parquet on the data store: MLRun's Parquet
    file is uploaded as it is; any other format is read by MLRun and written as Parquet."""
    import pyarrow.parquet as pq

    from digitalhub_provider.stores.data.tables import write_df

    entity_id = new_id()
    path = ctx.material_url(spec.project, "dataitem", name, entity_id, "data.parquet")
    written.append(ctx.material_url(spec.project, "dataitem", name, entity_id, ""))
    if local is not None and local.is_file() and local.suffix.lower() in PARQUET_SUFFIXES:
        ctx.data_store(path).upload(local, path)
        meta = pq.ParquetFile(local)
        dtypes = meta.schema_arrow.empty_table().to_pandas().dtypes
        rows = meta.metadata.num_rows
    else:
        import mlrun

        df = mlrun.get_dataitem(str(local) if local is not None else target).as_df()
        write_df(ctx, df, path)
        dtypes, rows = df.dtypes, len(df)
    entity = Dataitem.build(
        project=spec.project,
        name=name,
        kind="table",
        uuid=entity_id,
        spec={"path": path, "schema": {"fields": [{"name": str(c), "type": str(t)} for c, t in dtypes.items()]}},
        status={"state": State.CREATED.value, "rows": int(rows)},
    )
    return {"type": "dataitem", "entity": entity.to_dict()}


def _mlrun_image(image: str | None) -> str:
    """The image MLRun records: the function's own, unless it names the local environment a build made."""
    from digitalhub_provider.runtimes.registry import LOCAL_IMAGE_SCHEME

    return DEFAULT_IMAGE if not image or image.startswith(LOCAL_IMAGE_SCHEME) else image
