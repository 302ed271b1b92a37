"""Runs in a given state, made through the run controller as a real attempt would leave them."""

from __future__ import annotations

from typing import Any

from digitalhub_provider.entities import Run, State
from digitalhub_provider.entities.executable import Executable
from digitalhub_provider.sdk.context import Context
from digitalhub_provider.sdk.controller import RunController


def running_run(ctx: Context, fn: Executable, *, status: dict[str, Any] | None = None, **call: Any) -> Run:
    """A run created and moved to RUNNING (``status`` recorded with it), as a worker that died left it."""
    controller = RunController(ctx)
    run = controller.create(fn, **call)
    controller.transition(run, State.BUILT)
    controller.transition(run, State.READY)
    return controller.transition(run, State.RUNNING, **(status or {}))
