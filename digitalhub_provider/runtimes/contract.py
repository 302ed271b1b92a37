"""The run contract: a RunSpec goes in, a RunResult comes out.

The control plane writes the RunSpec to the data store and starts a runner
with its URL; the runner writes the RunResult atomically next to it
(``{data store}/runs/{run_id}/result.json``). Neither file holds credentials:
the runner gets those from its environment.
"""

from __future__ import annotations

import json
from typing import Any

RUNSPEC_FILE = "runspec.json"
# A pod also gets its RunSpec inline in this variable when it is small (it holds no credential):
# the runner then starts without a read from the data store, and the worker stores the file for
# the record while the pod starts (see ``operators/base.py``).
ENV_RUNSPEC = "DIGITALHUB_RUNSPEC"
INLINE_RUNSPEC_MAX = 64 * 1024
RESULT_FILE = "result.json"
LOG_FILE = "logs.txt"
# The entity folders a runner is about to write, recorded before the first byte of each: a run
# that ends without completing (its runner killed mid-upload too) leaves none of them behind.
WRITING_FILE = "writing.json"
# A service's runner answers 200 here once its init function returned: the launchers' readiness probe.
SERVICE_READY_PATH = "/.digitalhub/ready"
# The port a service's runner listens on in a pod by default (its Deployment's containerPort).
POD_SERVICE_PORT = 8080
# Set, a service's runner is in a container: it listens on every interface at this port with one
# worker (the platform's replicas are the concurrency), whatever the RunSpec's local address says.
# The Kubernetes launcher sets it to the containerPort; the tests' stand-in API server to the local
# port it publishes that containerPort on.
ENV_SERVICE_PORT = "DIGITALHUB_SERVICE_PORT"


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` interrupts the run rather than failing it: a ``BaseException`` that is neither
    an ``Exception`` nor ``SystemExit`` (KeyboardInterrupt, Airflow's task timeout and termination,
    a run being stopped). A runtime cleans up and lets it through: a runner in a process of its own
    records it as the run's error, a run inside the Airflow task leaves it to the task."""
    return not isinstance(exc, (Exception, SystemExit))


# Plain classes, not dataclasses: this module is imported by every task (and every runner), and
# generating a dataclass's methods costs about half a millisecond per class in each process.
class _Record:
    """Keyword construction, equality and ``to_dict`` over ``__slots__``."""

    __slots__: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), default=str).encode()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    __hash__ = None  # type: ignore[assignment]  # mutable


class RunSpec(_Record):
    # in the JSON's order
    __slots__ = (  # noqa: RUF023
        "run_id", "run_key", "project", "runtime", "action", "function", "source", "handler", "inputs",
        "parameters", "outputs", "values", "data_url", "result_url", "service",
    )  # fmt: skip

    def __init__(
        self,
        run_id: str,
        run_key: str,
        project: str,
        runtime: str,  # python | kfp | mlrun
        action: str,  # job | build | pipeline | ...
        function: dict[str, Any],  # the function (or workflow) entity, as a dictionary
        source: dict[str, Any],  # how to get the code: {"inline": {filename, base64}} or {"url": ...}
        handler: str | None,
        inputs: dict[str, dict[str, Any]] | None = None,  # argument -> {"type", "entity"}
        parameters: dict[str, Any] | None = None,
        outputs: list[str] | dict[str, str] | None = None,
        values: list[str] | None = None,
        data_url: str = "",
        result_url: str = "",
        service: dict[str, Any] | None = None,  # serve: {"host", "port", "replicas"}
    ) -> None:
        self.run_id = run_id
        self.run_key = run_key
        self.project = project
        self.runtime = runtime
        self.action = action
        self.function = function
        self.source = source
        self.handler = handler
        self.inputs: dict[str, dict[str, Any]] = {} if inputs is None else inputs
        self.parameters: dict[str, Any] = {} if parameters is None else parameters
        self.outputs = outputs
        self.values = values
        self.data_url = data_url
        self.result_url = result_url
        self.service = service

    @classmethod
    def from_json(cls, raw: bytes) -> RunSpec:
        return cls(**json.loads(raw))


class RunResult(_Record):
    __slots__ = ("run_id", "state", "message", "traceback", "outputs", "results", "logged", "timings")  # noqa: RUF023 - the JSON's order

    def __init__(
        self,
        run_id: str,
        state: str,  # COMPLETED | ERROR | STOPPED
        message: str | None = None,
        traceback: str | None = None,
        outputs: dict[str, dict[str, Any]] | None = None,  # name -> {"type", "entity"}
        results: dict[str, Any] | None = None,
        logged: list[dict[str, Any]] | None = None,  # [{"type", "entity"}] logged by the handler
        timings: dict[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.state = state
        self.message = message
        self.traceback = traceback
        self.outputs: dict[str, dict[str, Any]] = {} if outputs is None else outputs
        self.results: dict[str, Any] = {} if results is None else results
        self.logged: list[dict[str, Any]] = [] if logged is None else logged
        self.timings: dict[str, str] = {} if timings is None else timings

    @classmethod
    def from_json(cls, raw: bytes) -> RunResult:
        return cls(**json.loads(raw))
