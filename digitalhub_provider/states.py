"""Run states (DigitalHub's names) and the kind of a run, shared by the control plane and the runner
(kept out of the entities package: a runner reads and writes states without loading the entities)."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class State(str, Enum):
    CREATED = "CREATED"
    BUILT = "BUILT"
    READY = "READY"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    STOPPED = "STOPPED"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({State.COMPLETED, State.ERROR, State.STOPPED})
UNFINISHED_STATES = tuple(s for s in State if s not in FINAL_STATES)


class RunKind(NamedTuple):
    """``python+job:run`` as (runtime, action): the task's kind is ``python+job``, the run's
    ``python+job:run`` (DigitalHub's scheme)."""

    runtime: str
    action: str

    @classmethod
    def of(cls, kind: str) -> RunKind:
        """From a run's or a task's kind."""
        runtime, _, action = kind.partition(":")[0].partition("+")
        return cls(runtime, action)

    @property
    def task_kind(self) -> str:
        return f"{self.runtime}+{self.action}"

    @property
    def run_kind(self) -> str:
        return f"{self.task_kind}:run"
