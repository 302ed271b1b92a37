"""The kfp runtime's ``pipeline`` action, inside the runner (in the kfp environment).

1. fetch the workflow's source; it is one of
   - a pipeline handler written with :mod:`.dsl` (the seed's ``pipeline_context``),
   - a plain kfp ``@dsl.pipeline`` function (``handler="module:function"``),
   - a precompiled KFP IR YAML package (``lang="yaml"``, or a ``.yaml`` source);
2. for a DSL handler: record its graph and check it before anything runs
   (unknown function or action, reference to an output no step produces, a
   cycle, a handler that raises, a missing or unknown argument);
3. compile to KFP v2 IR YAML, kept with the run at ``{run folder}/pipeline.yaml``;
4. execute it: with ``kfp.local``'s SubprocessRunner in this environment (no
   per-task virtualenv, nothing installed per task; a pipeline root per run),
   or on a KFP API server (:mod:`.server`);
5. report each step's outputs and results under ``"{step}.{name}"``. A failed
   step fails the workflow run with a message naming it; later steps do not
   run and the outputs of earlier ones stay registered (by their own runs).
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Any

from digitalhub_provider.errors import DigitalHubError, RunError
from digitalhub_provider.runtimes.context import RunnerContext
from digitalhub_provider.runtimes.contract import RunResult, RunSpec
from digitalhub_provider.runtimes.kfp.dsl import ArgRef, PipelineError, PipelineGraph, record_pipeline
from digitalhub_provider.runtimes.kfp.server import KFP_RUN_FILE, read_target, run_on_server, safe_env
from digitalhub_provider.runtimes.kfp.step import STEPS_FOLDER, resolve_function, summary_url
from digitalhub_provider.runtimes.python.sources import fetch_source, load_handler
from digitalhub_provider.states import State

PACKAGE_FILE = "pipeline.yaml"
YAML_LANGS = ("yaml", "yml", "kfp-ir")


class WorkflowFailed(Exception):
    """The pipeline ran and failed (a step, or the KFP run): the message says where."""


class _Stopped(Exception):
    """The KFP run was canceled or terminated: the workflow run ends STOPPED."""


def run_job(spec: RunSpec, ctx: RunnerContext) -> RunResult:
    try:
        with tempfile.TemporaryDirectory(prefix=f"dh-kfp-{spec.run_id[:8]}-") as tmp:
            workdir = Path(tmp)
            location = _fetch(spec, workdir, ctx)
            return _run(spec, ctx, location, workdir)
    except (DigitalHubError, WorkflowFailed) as exc:  # a user's mistake or a failed step: the message says it all
        return RunResult(run_id=spec.run_id, state=State.ERROR.value, message=str(exc))
    except _Stopped as exc:
        return RunResult(run_id=spec.run_id, state=State.STOPPED.value, message=str(exc))
    except Exception as exc:
        return RunResult(
            run_id=spec.run_id,
            state=State.ERROR.value,
            message=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )


def _fetch(spec: RunSpec, workdir: Path, ctx: RunnerContext) -> Path:
    src = workdir / "src"
    src.mkdir()
    return fetch_source(spec.source, src, ctx)


def _run(spec: RunSpec, ctx: RunnerContext, location: Path, workdir: Path) -> RunResult:
    workflow = spec.function
    wspec: dict[str, Any] = workflow.get("spec") or {}
    input_keys = {name: ref["entity"]["key"] for name, ref in spec.inputs.items()}
    parameters = dict(spec.parameters)
    target = read_target(ctx, spec.run_id)
    meta = {"run_id": spec.run_id, "run_key": spec.run_key, "project": spec.project, "name": workflow.get("name")}
    package = workdir / PACKAGE_FILE
    graph: PipelineGraph | None = None
    pipeline: Any = None
    arguments: dict[str, Any]

    if _is_yaml(location, wspec):
        package.write_bytes(_yaml_file(location).read_bytes())
        arguments = {**input_keys, **parameters}
        print(f"workflow {meta['name']!r}: precompiled KFP package", flush=True)
    else:
        handler = load_handler(location, spec.handler or "")
        if _is_kfp_component(handler):
            pipeline = handler
            arguments = {**input_keys, **parameters}
            print(f"workflow {meta['name']!r}: kfp pipeline {spec.handler!r}", flush=True)
        else:
            graph = record_pipeline(handler, name=str(meta["name"] or spec.handler))
            values = graph.bind(input_keys, parameters)
            check_graph(graph, values, spec.project, ctx)
            print(f"workflow {meta['name']!r}: steps {', '.join(s.name for s in graph.order())}", flush=True)
            from digitalhub_provider.runtimes.kfp.compile import build_pipeline

            compiled = build_pipeline(
                graph, values, meta, workdir, image=_image(wspec), env=safe_env(ctx.settings) if target else None
            )
            pipeline, arguments = compiled.pipeline, compiled.arguments
        from digitalhub_provider.runtimes.kfp.compile import compile_to

        compile_to(pipeline, package)
    package_url = ctx.run_url(spec.run_id, PACKAGE_FILE)
    ctx.data_store(package_url).upload(package, package_url)
    print(f"compiled KFP IR: {package_url}", flush=True)

    results: dict[str, Any] = {"pipeline_package": package_url}
    step_names = [s.name for s in graph.order()] if graph is not None else []
    if target is not None:
        outcome = _on_server(spec, ctx, target, package, arguments, str(meta["name"] or "workflow"))
        results.update(kfp_run_id=outcome.kfp_run_id, kfp_host=target["host"], kfp_state=outcome.kfp_state)
        if outcome.state == State.STOPPED.value:
            raise _Stopped(outcome.message or "the KFP run was stopped")
        if outcome.state != State.COMPLETED.value:
            failed = _failed_step(ctx, spec.run_id, step_names)
            raise WorkflowFailed(f"{failed}; {outcome.message}" if failed else outcome.message)
    else:
        returned = _run_local(spec, ctx, pipeline, package, arguments, step_names, workdir)
        results.update({f"pipeline.{k}": v for k, v in returned.items()})
    outputs, step_results, steps = collect_steps(ctx, spec.run_id, step_names)
    results.update(step_results)
    if steps:
        results["steps"] = steps
    return RunResult(run_id=spec.run_id, state=State.COMPLETED.value, outputs=outputs, results=results)


# -- checks before anything runs ------------------------------------------------------------------
def check_graph(graph: PipelineGraph, values: dict[str, Any], project: str, ctx: RunnerContext) -> None:
    """Every step's function exists and offers the step's action; inputs bound to arguments are keys."""
    from digitalhub_provider.entities.keys import is_key
    from digitalhub_provider.entities.specs import TASK_KINDS
    from digitalhub_provider.runtimes.registry import BUILD_ACTION, RUNNERS, SERVE_ACTION

    for step in graph.order():
        try:
            fn = resolve_function({"function": step.function, "function_id": step.function_id}, project, ctx)
        except RunError as exc:
            raise PipelineError(f"step {step.name!r}: {exc}") from None
        if step.action not in TASK_KINDS.get(fn.kind, ()):
            raise PipelineError(
                f"step {step.name!r}: action {step.action!r} is not one of {fn.kind}'s actions: "
                f"{', '.join(TASK_KINDS.get(fn.kind, ()))}"
            )
        if step.action == SERVE_ACTION:  # a step runs to its end, a service does not end
            raise PipelineError(
                f"step {step.name!r}: action {SERVE_ACTION!r} cannot be a pipeline step (a service does not end)"
            )
        if step.action != BUILD_ACTION and (fn.kind, step.action) not in RUNNERS:
            raise PipelineError(f"step {step.name!r}: action {step.action!r} of {fn.kind} is not available")
        for key, value in step.inputs.items():
            given = values.get(value.name) if isinstance(value, ArgRef) else value
            if (isinstance(given, str) or isinstance(value, ArgRef)) and not is_key(given):
                raise PipelineError(
                    f"step {step.name!r}, input {key!r}: inputs are entity keys (store://...), got {given!r}"
                )


# -- execution -------------------------------------------------------------------------------------------
def _run_local(
    spec: RunSpec,
    ctx: RunnerContext,
    pipeline: Any,
    package: Path,
    arguments: dict[str, Any],
    step_names: list[str],
    workdir: Path,
) -> dict[str, Any]:
    """Execute with kfp.local's SubprocessRunner in this environment; return the pipeline's own outputs."""
    from kfp import local

    warnings.filterwarnings("ignore", message=".*no effect in the current local runner")  # display names
    root_url = ctx.run_url(spec.run_id, "kfp-root")
    root = ctx.data_store(root_url).local_path(root_url) or workdir / "kfp-root"
    root.mkdir(parents=True, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        workspace_root=str(workdir / "kfp-workspace"),
        raise_on_error=True,
    )
    if pipeline is None:  # a precompiled package
        from kfp import components

        pipeline = components.load_component_from_file(str(package))
    try:
        task = pipeline(**arguments)
    except Exception as exc:
        failed = _failed_step(ctx, spec.run_id, step_names)
        raise WorkflowFailed(failed or f"the pipeline failed: {exc}") from None
    finally:
        sys.stdout.flush()
    return _plain_outputs(getattr(task, "outputs", None) or {})


def _plain_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for name, value in outputs.items():
        if value is None or isinstance(value, (str, int, float, bool, list, dict)):
            plain[name] = value
        else:
            plain[name] = getattr(value, "uri", None) or repr(value)
    return plain


def _on_server(
    spec: RunSpec, ctx: RunnerContext, target: dict[str, Any], package: Path, arguments: dict[str, Any], name: str
) -> Any:
    url = ctx.run_url(spec.run_id, KFP_RUN_FILE)

    def report(info: dict[str, Any]) -> None:
        ctx.data_store(url).write_bytes(url, json.dumps(info).encode())

    def log(line: str) -> None:
        print(line, flush=True)

    return run_on_server(target, package, arguments, f"{name}-{spec.run_id[:8]}", report, log)


# -- outcome -----------------------------------------------------------------------------------------------
def read_summaries(ctx: RunnerContext, run_id: str, step_names: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name in step_names:
        url = summary_url(ctx, run_id, name)
        store = ctx.data_store(url)
        if store.exists(url):
            found[name] = json.loads(store.read_bytes(url))
    return found


def _failed_step(ctx: RunnerContext, run_id: str, step_names: list[str]) -> str | None:
    """``step 'x' failed: ...`` for the first step that did not complete, if any reported."""
    for name, summary in read_summaries(ctx, run_id, step_names).items():
        if summary.get("state") != State.COMPLETED.value:
            run_key = summary.get("run_key")
            where = f" (run {run_key} ended {summary.get('run_state', 'ERROR')})" if run_key else ""
            return f"step {name!r} failed{where}: {summary.get('message') or 'no message'}"
    return None


def collect_steps(
    ctx: RunnerContext, run_id: str, step_names: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Each step's outputs and results, under ``"{step}.{name}"``; the step runs under ``steps``."""
    from digitalhub_provider.entities.keys import parse_key

    outputs: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {}
    steps: dict[str, Any] = {}
    for name, summary in read_summaries(ctx, run_id, step_names).items():
        steps[name] = {"run_key": summary.get("run_key"), "state": summary.get("state")}
        for out, key in (summary.get("outputs") or {}).items():
            outputs[f"{name}.{out}"] = {"type": parse_key(key).entity_type, "entity": {"key": key}, "existing": True}
        for res, value in (summary.get("results") or {}).items():
            results[f"{name}.{res}"] = value
    return outputs, results, steps


# -- helpers ----------------------------------------------------------------------------------------------
def _is_yaml(location: Path, wspec: dict[str, Any]) -> bool:
    if str(wspec.get("lang") or "").lower() in YAML_LANGS:
        return True
    return location.is_file() and location.name.removesuffix(".py").endswith((".yaml", ".yml"))


def _yaml_file(location: Path) -> Path:
    if location.is_file():
        return location
    found = sorted([*location.rglob("*.yaml"), *location.rglob("*.yml")])
    if len(found) != 1:
        raise RunError(f"the workflow's source holds {len(found)} YAML files: expected one KFP package")
    return found[0]


def _is_kfp_component(handler: Any) -> bool:
    """A plain kfp pipeline (``@dsl.pipeline``) or component, as opposed to a DSL handler."""
    return hasattr(handler, "pipeline_spec") and hasattr(handler, "component_spec")


def _image(wspec: dict[str, Any]) -> str:
    """The steps' image on a KFP cluster: the workflow's ``image``/``tag``; locally only its name matters."""
    image = wspec.get("image")
    if image:
        tag = wspec.get("tag")
        return f"{image}:{tag}" if tag and ":" not in image.rsplit("/", 1)[-1] else str(image)
    return f"python:{sys.version_info.major}.{sys.version_info.minor}"


__all__ = ["STEPS_FOLDER", "run_job"]
