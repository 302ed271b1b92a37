"""Run states (DigitalHub's names) and the transitions the control plane makes."""

from __future__ import annotations

from enum import Enum


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
