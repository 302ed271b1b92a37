"""The run contract: a RunSpec goes in, a RunResult comes out.

The control plane writes the RunSpec to the data store and starts a runner
with its URL; the runner writes the RunResult atomically next to it
(``{data store}/runs/{run_id}/result.json``). Neither file holds credentials:
the runner gets those from its environment.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

RUNSPEC_FILE = "runspec.json"
# A pod also gets its RunSpec inline in this variable when it is small (it holds no credential):
# the runner then starts without a read from the data store, and the worker stores the file for
# the record while the pod starts (see ``operators/base.py``).
ENV_RUNSPEC = "DIGITALHUB_RUNSPEC"
INLINE_RUNSPEC_MAX = 64 * 1024
RESULT_FILE = "result.json"
LOG_FILE = "logs.txt"


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` interrupts the run rather than failing it: a ``BaseException`` that is neither
    an ``Exception`` nor ``SystemExit`` (KeyboardInterrupt, Airflow's task timeout and termination,
    a run being stopped). A runtime cleans up and lets it through: a runner in a process of its own
    records it as the run's error, a run inside the Airflow task leaves it to the task."""
    return not isinstance(exc, (Exception, SystemExit))


@dataclass
class RunSpec:
    run_id: str
    run_key: str
    project: str
    runtime: str  # python | kfp | mlrun
    action: str  # job | build | pipeline | ...
    function: dict[str, Any]  # the function (or workflow) entity, as a dictionary
    source: dict[str, Any]  # how to get the code: {"inline": {filename, base64}} or {"url": ...}
    handler: str | None
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # argument -> {"type", "entity"}
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] | dict[str, str] | None = None
    values: list[str] | None = None
    data_url: str = ""
    result_url: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), default=str).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> RunSpec:
        return cls(**json.loads(raw))


@dataclass
class RunResult:
    run_id: str
    state: str  # COMPLETED | ERROR
    message: str | None = None
    traceback: str | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"type", "entity"}
    results: dict[str, Any] = field(default_factory=dict)
    logged: list[dict[str, Any]] = field(default_factory=list)  # [{"type", "entity"}] logged by the handler
    timings: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), default=str).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> RunResult:
        return cls(**json.loads(raw))
