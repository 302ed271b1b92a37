"""The seed's pipeline DSL: ``pipeline_context()`` and ``pc.step(...)``.

A pipeline is a plain function whose arguments are the workflow run's inputs
and parameters::

    from digitalhub_provider.runtimes.kfp.dsl import pipeline_context

    def myhandler(url):
        with pipeline_context() as pc:
            s1 = pc.step(name="download", function="downloader-funct", action="job",
                         inputs={"url": url}, outputs={"dataset": "dataset"})
            s2 = pc.step(name="extract_parking", function="extract-parkings", action="job",
                         inputs={"di": s1.outputs["dataset"]}, outputs={"parkings": "parkings"})

Calling it through :func:`record_pipeline` gives a :class:`PipelineGraph`: the
steps, what each one runs, and the references between them. Nothing runs and
nothing is imported here but the standard library, so the same graph is
compiled to KFP IR inside the kfp environment (:mod:`.compile`) and rendered
as an Airflow TaskGroup at DAG-parse time (:mod:`digitalhub_provider.operators.kfp_task_group`).

Each step runs a platform function (by name: its latest version; ``function_id``
pins one) with an action. ``outputs`` maps the function's output names to the
step's output names (``{"dataset": "dataset"}``; a list means the same names),
and ``values`` names results (primitives) the step exposes. A later step takes
``step.outputs["dataset"]`` (an entity key) in its ``inputs`` and a value in its
``parameters``.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from digitalhub_provider.entities.specs import JOB_TASK_FIELDS
from digitalhub_provider.errors import DigitalHubError

STEP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
OUTPUT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,253}$")
# The task arguments a step may set: a job's (validated again when the step runs).
TASK_ARGUMENTS = JOB_TASK_FIELDS
OUTPUT = "output"  # a step output that is an entity key (dataitem, artifact, model)
VALUE = "value"  # a step output that is a result (a primitive)


class PipelineError(DigitalHubError):
    """The pipeline definition is wrong: raised before any step runs."""


# -- references ---------------------------------------------------------------------------------
class _NotAString:
    def __str__(self) -> str:
        raise PipelineError(
            f"{self!r} can only be passed whole as a step input or parameter, not formatted into a string "
            "(it has no value while the pipeline is defined)"
        )

    def __format__(self, spec: str) -> str:
        return self.__str__()

    def __bool__(self) -> bool:
        raise PipelineError(f"{self!r} has no value while the pipeline is defined: it cannot be tested")


@dataclass(frozen=True, eq=True)
class ArgRef(_NotAString):
    """An argument of the pipeline handler: a workflow run input or parameter."""

    name: str

    def __repr__(self) -> str:
        return f"pipeline argument {self.name!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"arg": self.name}


@dataclass(frozen=True, eq=True)
class OutputRef(_NotAString):
    """An output of an earlier step: an entity key (``kind="output"``) or a result (``kind="value"``)."""

    step: str
    output: str
    kind: str = OUTPUT

    def __repr__(self) -> str:
        return f"output {self.output!r} of step {self.step!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "output": self.output, "kind": self.kind}


Ref = ArgRef | OutputRef


def value_to_dict(value: Any) -> dict[str, Any]:
    """A step argument as JSON: ``{"arg": ...}``, ``{"step", "output", "kind"}`` or ``{"value": ...}``."""
    if isinstance(value, (ArgRef, OutputRef)):
        return value.to_dict()
    return {"value": value}


def value_from_dict(data: dict[str, Any]) -> Any:
    if "arg" in data:
        return ArgRef(data["arg"])
    if "step" in data:
        return OutputRef(data["step"], data["output"], data.get("kind", OUTPUT))
    return data.get("value")


def _nested_refs(value: Any) -> list[Ref]:
    """References hidden inside a list or dict constant (not supported: they must be whole values)."""
    found: list[Ref] = []
    if isinstance(value, dict):
        for v in value.values():
            found += [v] if isinstance(v, (ArgRef, OutputRef)) else _nested_refs(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            found += [v] if isinstance(v, (ArgRef, OutputRef)) else _nested_refs(v)
    return found


# -- steps -------------------------------------------------------------------------------------------
class StepOutputs(Mapping[str, OutputRef]):
    """``step.outputs["name"]``: a reference to an output the step declares."""

    def __init__(self, step: Step) -> None:
        self._step = step

    def __getitem__(self, name: str) -> OutputRef:
        kinds = self._step.exposed()
        if name not in kinds:
            raise PipelineError(
                f"step {self._step.name!r} has no output {name!r}: declare it in the step's outputs= or values= "
                f"(its outputs: {', '.join(kinds) or 'none'})"
            )
        return OutputRef(self._step.name, name, kinds[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._step.exposed())

    def __len__(self) -> int:
        return len(self._step.exposed())


@dataclass
class Step:
    """One step of a pipeline: run ``function`` with ``action``."""

    name: str
    function: str
    action: str = "job"
    inputs: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    output_map: dict[str, str] = field(default_factory=dict)  # function output name -> step output name
    values: list[str] = field(default_factory=list)
    function_id: str | None = None
    task: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)  # explicit ordering (``after``)
    cache: bool | dict[str, Any] | None = None  # the step run's ``cache`` (see sdk/cache.py)

    @property
    def outputs(self) -> StepOutputs:
        return StepOutputs(self)

    @property
    def output(self) -> OutputRef:
        """The step's only output (KFP's ``task.output``)."""
        names = list(self.exposed())
        if len(names) != 1:
            raise PipelineError(
                f"step {self.name!r} has {len(names)} outputs ({', '.join(names) or 'none'}): use step.outputs[name]"
            )
        return self.outputs[names[0]]

    def exposed(self) -> dict[str, str]:
        """The names a later step can reference, and their kind (output or value)."""
        kinds = {name: OUTPUT for name in self.output_map.values()}
        kinds.update({name: VALUE for name in self.values})
        return kinds

    def after(self, *steps: Step) -> Step:
        """Run this step after ``steps`` even if it takes none of their outputs."""
        for s in steps:
            if not isinstance(s, Step):
                raise PipelineError(f"step {self.name!r}: after() takes steps, got {type(s).__name__}")
            if s.name not in self.depends_on:
                self.depends_on.append(s.name)
        return self

    def references(self) -> list[tuple[str, str, Any]]:
        """``(where, name, value)`` for every input and parameter."""
        return [("inputs", k, v) for k, v in self.inputs.items()] + [
            ("parameters", k, v) for k, v in self.parameters.items()
        ]

    def upstream(self) -> list[str]:
        """The steps this one waits for: those whose outputs it takes, then those named in ``after``."""
        names: list[str] = []
        for _, _, value in self.references():
            if isinstance(value, OutputRef) and value.step not in names:
                names.append(value.step)
        names += [d for d in self.depends_on if d not in names]
        return names

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "function": self.function,
            "function_id": self.function_id,
            "action": self.action,
            "inputs": {k: value_to_dict(v) for k, v in self.inputs.items()},
            "parameters": {k: value_to_dict(v) for k, v in self.parameters.items()},
            "outputs": dict(self.output_map),
            "values": list(self.values),
            "task": dict(self.task),
            "depends_on": list(self.depends_on),
            **({"cache": self.cache} if self.cache not in (None, False) else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        return cls(
            name=data["name"],
            function=data["function"],
            function_id=data.get("function_id"),
            action=data.get("action") or "job",
            inputs={k: value_from_dict(v) for k, v in (data.get("inputs") or {}).items()},
            parameters={k: value_from_dict(v) for k, v in (data.get("parameters") or {}).items()},
            output_map=dict(data.get("outputs") or {}),
            values=list(data.get("values") or []),
            task=dict(data.get("task") or {}),
            depends_on=list(data.get("depends_on") or []),
            cache=data.get("cache"),
        )


class PipelineContext:
    """What ``with pipeline_context() as pc`` gives: ``pc.step(...)`` records a step."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def step(
        self,
        name: str,
        function: str | None = None,
        action: str = "job",
        inputs: dict[str, Any] | None = None,
        outputs: dict[str, str] | list[str] | None = None,
        parameters: dict[str, Any] | None = None,
        values: list[str] | None = None,
        function_id: str | None = None,
        cache: bool | dict[str, Any] | None = None,
        **task: Any,
    ) -> Step:
        """Add a step that runs ``function`` (a name, ``name:id`` or a key) with ``action``. ``cache``
        (True, or ``{"max_age": seconds}``) lets the step's run reuse an identical earlier run's outcome,
        as ``function.run(cache=...)`` does: KFP's own step caching is off for DigitalHub steps."""
        if not isinstance(name, str) or not STEP_NAME_RE.match(name):
            raise PipelineError(
                f"invalid step name {name!r}: use letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        for key in ("workflow", "workflow_id"):
            if task.get(key) is not None:
                raise PipelineError(f"step {name!r}: steps that run a workflow are not supported yet")
            task.pop(key, None)
        unknown = sorted(set(task) - set(TASK_ARGUMENTS))
        if unknown:
            raise PipelineError(
                f"step {name!r}: unknown argument(s) {', '.join(map(repr, unknown))} "
                f"(a step takes name, function, function_id, action, inputs, outputs, parameters, values, "
                f"cache and the task arguments {', '.join(TASK_ARGUMENTS)})"
            )
        if not function or not isinstance(function, str):
            raise PipelineError(f"step {name!r}: name the function to run (function='my-function')")
        if not action or not isinstance(action, str):
            raise PipelineError(f"step {name!r}: action must be a string such as 'job'")
        taken = {s.name for s in _all_steps(self)}
        if name in taken:
            raise PipelineError(f"two steps are named {name!r}: step names must be unique in a pipeline")
        for what, given in (("inputs", inputs), ("parameters", parameters)):
            if given is not None and not isinstance(given, dict):
                raise PipelineError(f"step {name!r}: {what} must be a dictionary, got {type(given).__name__}")
        if isinstance(outputs, (list, tuple)):
            output_map = {str(o): str(o) for o in outputs}
        elif isinstance(outputs, dict):
            output_map = {str(k): str(v) for k, v in outputs.items()}
        elif outputs is None:
            output_map = {}
        else:
            raise PipelineError(f"step {name!r}: outputs must be a dictionary or a list, got {type(outputs).__name__}")
        if cache is not None and not isinstance(cache, (bool, dict)):  # the step's run checks a dict's policy
            raise PipelineError(f"step {name!r}: cache must be True, False or {{'max_age': seconds}}, got {cache!r}")
        value_names = [str(v) for v in (values or [])]
        exposed = [*output_map.values(), *value_names]
        for out in exposed:
            if not OUTPUT_NAME_RE.match(out):
                raise PipelineError(f"step {name!r}: invalid output name {out!r}")
        duplicated = sorted({o for o in exposed if exposed.count(o) > 1})
        if duplicated:
            raise PipelineError(f"step {name!r}: output name(s) {', '.join(map(repr, duplicated))} given twice")
        step = Step(
            name=name,
            function=function,
            function_id=function_id,
            action=action,
            inputs=dict(inputs or {}),
            parameters=dict(parameters or {}),
            output_map=output_map,
            values=value_names,
            task={k: v for k, v in task.items() if v is not None},
            cache=cache,
        )
        self.steps.append(step)
        return step


# -- recording ------------------------------------------------------------------------------------------
class _Recording(threading.local):
    contexts: list[PipelineContext] | None = None


_recording = _Recording()


def _all_steps(current: PipelineContext) -> list[Step]:
    """Steps of every context of the pipeline being recorded (a handler may open several)."""
    contexts = _recording.contexts or []
    steps = [s for c in contexts if c is not current for s in c.steps]
    return steps + current.steps


@contextmanager
def pipeline_context() -> Iterator[PipelineContext]:
    """Open a pipeline definition: ``with pipeline_context() as pc: pc.step(...)``."""
    pc = PipelineContext()
    if _recording.contexts is not None:
        _recording.contexts.append(pc)
    yield pc


@dataclass
class PipelineArgument:
    name: str
    required: bool = True
    default: Any = None


@dataclass
class PipelineGraph:
    """The recorded pipeline: its arguments and its steps (in definition order)."""

    name: str
    arguments: list[PipelineArgument]
    steps: list[Step]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise PipelineError(f"the pipeline has no step {name!r}")

    def validate(self) -> PipelineGraph:
        """Every reference names an argument or a declared output of another step; no cycle."""
        if not self.steps:
            raise PipelineError(
                f"pipeline {self.name!r} defines no step: open pipeline_context() and call pc.step(...)"
            )
        names = [s.name for s in self.steps]
        by_name = {s.name: s for s in self.steps}
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise PipelineError(f"two steps are named {dup[0]!r}: step names must be unique in a pipeline")
        args = {a.name for a in self.arguments}
        for s in self.steps:
            for where, key, value in s.references():
                nested = _nested_refs(value)
                if nested:
                    raise PipelineError(
                        f"step {s.name!r}, {where} {key!r}: {nested[0]!r} is inside a list or dictionary; "
                        "references must be whole values"
                    )
                if isinstance(value, ArgRef) and value.name not in args:
                    raise PipelineError(
                        f"step {s.name!r}, {where} {key!r}: the pipeline has no argument {value.name!r}"
                    )
                if isinstance(value, OutputRef):
                    self._check_output(s, where, key, value, by_name)
                if where == "inputs" and not isinstance(value, (ArgRef, OutputRef, str)):
                    raise PipelineError(
                        f"step {s.name!r}, input {key!r}: inputs are entity keys (store://...), "
                        f"got {type(value).__name__}; pass other values in parameters"
                    )
            for dep in s.depends_on:
                if dep not in by_name:
                    raise PipelineError(f"step {s.name!r} runs after {dep!r}, which is not a step of the pipeline")
        self.order()
        return self

    @staticmethod
    def _check_output(s: Step, where: str, key: str, ref: OutputRef, by_name: dict[str, Step]) -> None:
        producer = by_name.get(ref.step)
        if producer is None:
            raise PipelineError(
                f"step {s.name!r}, {where} {key!r}: takes output {ref.output!r} of step {ref.step!r}, "
                "but no step has that name"
            )
        if producer is s:
            raise PipelineError(f"step {s.name!r}, {where} {key!r}: a step cannot take its own output {ref.output!r}")
        kinds = producer.exposed()
        if ref.output not in kinds:
            raise PipelineError(
                f"step {s.name!r}, {where} {key!r}: step {ref.step!r} produces no output {ref.output!r} "
                f"(its outputs: {', '.join(kinds) or 'none'})"
            )
        if where == "inputs" and kinds[ref.output] == VALUE:
            raise PipelineError(
                f"step {s.name!r}, input {key!r}: {ref!r} is a value, not an entity; pass it in parameters"
            )

    def order(self) -> list[Step]:
        """The steps in an order that runs each after its upstream ones (definition order when free)."""
        remaining = {s.name: set(s.upstream()) for s in self.steps}
        done: list[Step] = []
        while remaining:
            ready = [s for s in self.steps if s.name in remaining and not remaining[s.name]]
            if not ready:
                cycle = self._cycle(remaining)
                raise PipelineError(f"the steps depend on each other in a cycle: {' -> '.join(cycle)}")
            for s in ready:
                done.append(s)
                del remaining[s.name]
            for deps in remaining.values():
                deps.difference_update(s.name for s in ready)
        return done

    @staticmethod
    def _cycle(remaining: dict[str, set[str]]) -> list[str]:
        start = next(iter(remaining))
        path = [start]
        while True:
            nxt = next(d for d in sorted(remaining[path[-1]]) if d in remaining)
            if nxt in path:
                return [*path[path.index(nxt) :], nxt]
            path.append(nxt)

    def bind(self, inputs: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
        """The value of every argument, from the workflow run's inputs and parameters, or its default."""
        names = [a.name for a in self.arguments]
        both = sorted(set(inputs) & set(parameters))
        if both:
            raise PipelineError(f"{both[0]!r} is given both as an input and as a parameter")
        for given in [*inputs, *parameters]:
            if given not in names:
                raise PipelineError(
                    f"{given!r} is not an argument of pipeline {self.name!r} "
                    f"(its arguments: {', '.join(names) or 'none'})"
                )
        values: dict[str, Any] = {}
        for a in self.arguments:
            if a.name in inputs:
                values[a.name] = inputs[a.name]
            elif a.name in parameters:
                values[a.name] = parameters[a.name]
            elif a.required:
                raise PipelineError(
                    f"pipeline argument {a.name!r} is missing: give it in the workflow run's inputs (an entity key) "
                    "or parameters"
                )
            else:
                values[a.name] = a.default
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arguments": [{"name": a.name, "required": a.required, "default": a.default} for a in self.arguments],
            "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineGraph:
        return cls(
            name=data["name"],
            arguments=[PipelineArgument(**a) for a in data.get("arguments") or []],
            steps=[Step.from_dict(s) for s in data.get("steps") or []],
        )


def record_pipeline(handler: Callable[..., Any], name: str | None = None) -> PipelineGraph:
    """Call the pipeline handler with a placeholder for each argument and return its validated graph.

    Whatever the handler raises becomes a :class:`PipelineError` naming it, so a
    broken pipeline stops the run before any step starts.
    """
    title = str(getattr(handler, "__name__", None) or "pipeline")
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):
        raise PipelineError(f"pipeline handler {title!r} is not a function") from None
    arguments: list[PipelineArgument] = []
    for p in sig.parameters.values():
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise PipelineError(f"pipeline handler {title!r}: *args and **kwargs are not supported; name each argument")
        required = p.default is inspect.Parameter.empty
        arguments.append(PipelineArgument(p.name, required, None if required else p.default))
    if _recording.contexts is not None:
        raise PipelineError("record_pipeline() cannot be called while another pipeline is being recorded")
    contexts: list[PipelineContext] = []
    _recording.contexts = contexts
    try:
        handler(**{a.name: ArgRef(a.name) for a in arguments})
    except PipelineError:
        raise
    except Exception as exc:
        raise PipelineError(f"pipeline handler {title!r} raised {type(exc).__name__}: {exc}") from exc
    finally:
        _recording.contexts = None
    graph = PipelineGraph(name=name or title, arguments=arguments, steps=[s for c in contexts for s in c.steps])
    return graph.validate()
