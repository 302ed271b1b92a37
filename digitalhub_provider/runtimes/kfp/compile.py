"""A recorded :class:`~.dsl.PipelineGraph` as a kfp pipeline, compiled to KFP v2 IR YAML.

Runs only in the kfp environment (it imports kfp). Each step becomes a
lightweight Python component of its own, generated as source because kfp
embeds a component's source in the task's command: its inputs are the step's
JSON description (a constant) plus one parameter per reference (an entity key
or a value of an upstream step, or a pipeline argument), and its outputs are
the step's declared outputs and values. So the IR shows the real data flow
between the steps, and ``kfp.local`` passes each output on to the steps that
take it.

The components install nothing (``install_kfp_package=False``, no
``packages_to_install``): their image (locally: the kfp environment itself)
already holds kfp and this package's runner.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import keyword
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitalhub_provider.runtimes.kfp.dsl import VALUE, ArgRef, OutputRef, PipelineGraph, Step

STEP_PARAMETER = "dh_step"
NATIVE_TYPES: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str"}


def pipeline_name(name: str) -> str:
    """A name KFP accepts (lower case letters, digits and '-')."""
    clean = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return (clean or "pipeline")[:100]


def identifier(name: str, taken: set[str], prefix: str = "") -> str:
    """A Python identifier for ``name``, not in ``taken`` (and then added to it)."""
    base = prefix + re.sub(r"\W", "_", name)
    if not base or base[0].isdigit() or base.startswith("_") or keyword.iskeyword(base):
        base = "o_" + base.lstrip("_")
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


@dataclass
class ArgumentSpec:
    """How a pipeline argument travels in KFP: natively typed, or as a JSON string."""

    name: str
    type_name: str
    value: Any
    json_encoded: bool


@dataclass
class StepComponent:
    step: Step
    function_name: str
    parameters: dict[str, Any] = field(default_factory=dict)  # component parameter -> ArgRef | OutputRef
    parameter_types: dict[str, str] = field(default_factory=dict)
    exposed: list[tuple[str, str, str]] = field(default_factory=list)  # (field, output name, kind)
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompiledPipeline:
    pipeline: Any  # the kfp GraphComponent
    arguments: dict[str, Any]  # what to call it with
    task_steps: dict[str, str]  # KFP task name -> step name
    package_path: Path | None = None


def argument_specs(graph: PipelineGraph, values: dict[str, Any]) -> dict[str, ArgumentSpec]:
    specs: dict[str, ArgumentSpec] = {}
    for a in graph.arguments:
        value = values.get(a.name)
        native = NATIVE_TYPES.get(type(value))
        if native is not None:
            specs[a.name] = ArgumentSpec(a.name, native, value, False)
        else:
            specs[a.name] = ArgumentSpec(a.name, "str", json.dumps(value), True)
    return specs


def plan_components(
    graph: PipelineGraph, args: dict[str, ArgumentSpec], workflow: dict[str, Any]
) -> list[StepComponent]:
    """Name every component, its parameters and outputs, and write each step's JSON description."""
    functions: set[str] = set()
    plans: dict[str, StepComponent] = {}
    ordered = graph.order()
    for step in ordered:
        plan = StepComponent(step=step, function_name=identifier(step.name, functions, "dh_"))
        names: set[str] = {STEP_PARAMETER}
        description: dict[str, Any] = {}
        for where in ("inputs", "parameters"):
            resolved: dict[str, Any] = {}
            for key, value in getattr(step, where).items():
                if isinstance(value, (ArgRef, OutputRef)):
                    pname = identifier(key, names, "in_" if where == "inputs" else "par_")
                    plan.parameters[pname] = value
                    if isinstance(value, ArgRef):
                        plan.parameter_types[pname] = args[value.name].type_name
                        decode = args[value.name].json_encoded
                    else:
                        plan.parameter_types[pname] = "str"
                        decode = value.kind == VALUE
                    resolved[key] = {"param": pname, "decode": decode}
                else:
                    resolved[key] = {"value": value}
            description[where] = resolved
        fields: set[str] = set()
        for name, kind in step.exposed().items():
            plan.exposed.append((identifier(name, fields), name, kind))
        plan.spec = {
            "name": step.name,
            "function": step.function,
            "function_id": step.function_id,
            "action": step.action,
            "outputs": dict(step.output_map),
            "values": list(step.values),
            "task": dict(step.task),
            "cache": step.cache,
            **description,
            "exposed": [list(e) for e in plan.exposed],
            "workflow": workflow,
        }
        plans[step.name] = plan
    return [plans[s.name] for s in ordered]


def component_source(plans: list[StepComponent]) -> str:
    """Python source of one function per step (kfp needs real source to embed in each task)."""
    chunks = ["from typing import NamedTuple\n"]
    for plan in plans:
        params = [f"{STEP_PARAMETER}: str"] + [f"{p}: {plan.parameter_types[p]}" for p in plan.parameters]
        returns = ""
        if plan.exposed:
            fields = ", ".join(f"({f!r}, str)" for f, _, _ in plan.exposed)
            returns = f" -> NamedTuple('Outputs', [{fields}])"
        refs = ", ".join(f"{p!r}: {p}" for p in plan.parameters)
        chunks.append(
            f"\ndef {plan.function_name}({', '.join(params)}){returns}:\n"
            f'    """DigitalHub step {plan.step.name!r}: run function {plan.step.function!r} ({plan.step.action})."""\n'
            "    from digitalhub_provider.sdk.steps import run_step\n\n"
            f"    return run_step({STEP_PARAMETER}, {{{refs}}})\n"
        )
    return "\n".join(chunks)


def _import_source(source: str, workdir: Path, module_name: str) -> Any:
    path = workdir / f"{module_name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def build_pipeline(
    graph: PipelineGraph,
    values: dict[str, Any],
    workflow: dict[str, Any],
    workdir: Path,
    image: str,
    env: dict[str, str] | None = None,
) -> CompiledPipeline:
    """The graph as a kfp pipeline (a GraphComponent), ready to compile or to call under ``kfp.local``."""
    from kfp import dsl

    args = argument_specs(graph, values)
    plans = plan_components(graph, args, workflow)
    module = _import_source(component_source(plans), workdir, f"dh_pipeline_{workflow.get('run_id', 'x')[:12]}")
    components = {
        p.step.name: dsl.component(getattr(module, p.function_name), base_image=image, install_kfp_package=False)
        for p in plans
    }

    def body(*positional: Any) -> None:
        bound = dict(zip(args, positional, strict=True))
        tasks: dict[str, Any] = {}
        for plan in plans:
            kwargs: dict[str, Any] = {STEP_PARAMETER: json.dumps(plan.spec, default=str)}
            for pname, ref in plan.parameters.items():
                if isinstance(ref, ArgRef):
                    kwargs[pname] = bound[ref.name]
                else:
                    upstream = next(p for p in plans if p.step.name == ref.step)
                    out_field = next(f for f, n, _ in upstream.exposed if n == ref.output)
                    kwargs[pname] = tasks[ref.step].outputs[out_field]
            task = components[plan.step.name](**kwargs)
            task.set_display_name(plan.step.name)
            task.set_caching_options(False)  # a step has effects on the platform: never skip it
            for name, value in (env or {}).items():
                task.set_env_variable(name, value)
            for dep in plan.step.depends_on:
                task.after(tasks[dep])
            tasks[plan.step.name] = task

    type_of = {"bool": bool, "int": int, "float": float, "str": str}
    body.__name__ = pipeline_name(graph.name).replace("-", "_")
    body.__doc__ = f"DigitalHub workflow {workflow.get('name', graph.name)!r}"
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=type_of[a.type_name],
                              default=a.value)
            for a in args.values()
        ]
    )  # fmt: skip
    pipeline = dsl.pipeline(body, name=pipeline_name(str(workflow.get("name") or graph.name)))
    task_steps = {_task_name(p.function_name): p.step.name for p in plans}
    return CompiledPipeline(pipeline, {a.name: a.value for a in args.values()}, task_steps)


def _task_name(function_name: str) -> str:
    """KFP's task name for a component made from ``function_name`` (``dh_a_b`` -> ``dh-a-b``)."""
    return re.sub(r"[^a-z0-9]+", "-", function_name.lower()).strip("-")


def compile_to(pipeline: Any, path: Path) -> Path:
    """Write KFP v2 IR YAML."""
    from kfp import compiler

    compiler.Compiler().compile(pipeline_func=pipeline, package_path=str(path))
    return path
