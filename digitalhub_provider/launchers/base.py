"""The launcher protocol: how a run's runner is started, waited for and killed.

A launcher readies the environment (``prepare``), starts the runner with a
RunSpec (``start``) and gives a :class:`Handle` to wait on, poll and kill;
``reattach`` gives a handle on a runner an earlier attempt started (a pod
that is still running). Launchers never write a run's status: the run
controller (:mod:`digitalhub_provider.sdk.controller`) does, from what the
handle reports.

Implementations: :mod:`.local` (a subprocess), :mod:`.in_process` (the
caller's interpreter), :mod:`.kubernetes` (a pod through
KubernetesPodOperator) and :mod:`.kfp_server` (a pipeline on a KFP API
server, around one of the others).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitalhub_provider.errors import RunError
from digitalhub_provider.runtimes.contract import LOG_FILE

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.runtimes.contract import RunSpec
    from digitalhub_provider.stores.context import Context


class RunnerLost(RunError):
    """The runner ended without an exit code to go by (a pod that failed or could not be followed):
    the run's RunResult, if it wrote one, still decides the outcome."""


class Handle:
    """A started runner. ``status`` holds what the run records when it starts RUNNING (launcher,
    pid, host, pod, ...)."""

    status: dict[str, Any]
    log_path: Path | None = None
    pid: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """The runner's exit code (0: it wrote a COMPLETED result); ``subprocess.TimeoutExpired``
        after ``timeout`` seconds, :class:`RunnerLost` when there is no exit code to give."""
        raise NotImplementedError

    def poll(self) -> int | None:
        """The exit code, or None while the runner runs."""
        raise NotImplementedError

    def kill(self) -> None:
        """Stop the runner and whatever it started."""
        raise NotImplementedError

    def progress(self) -> dict[str, Any]:
        """Status fields learnt while the runner runs (a KFP run's id), for the controller to record."""
        return {}


class Launcher:
    name = "launcher"
    # Steps that follow each other at once (BUILT, READY, RUNNING) are saved in one write.
    quick = False
    # Seconds between two looks at ``Handle.progress`` while waiting (None: never).
    progress_interval: float | None = None
    # What a build's ``prepare`` made, for the function's next version (``spec.image``); None: nothing
    # later runs could name.
    image: str | None = None
    # Whether a build runs as a runner (an image build's pod); otherwise ``prepare`` is the whole build.
    runs_build = False

    def prepare(self, fn: Executable, run: Run, ctx: Context) -> str | None:
        """Ready the runtime environment; returns what it is (an interpreter, an image), or None."""
        return None

    def inline_runspec(self, spec_json: bytes) -> bool:
        """Whether the runner gets the RunSpec with its start (then the file is stored meanwhile)."""
        return False

    def start(self, spec: RunSpec, run: Run, ctx: Context) -> Handle:
        raise NotImplementedError

    def reattach(self, fn: Executable, run: Run, ctx: Context) -> Handle | None:
        """A handle on the runner an earlier attempt started for ``run``, if this launcher can find one."""
        return None

    def is_deferral(self, exc: BaseException) -> bool:
        """Whether ``exc`` hands the waiting to someone else (Airflow's triggerer): the run stays RUNNING."""
        return False


def log_path(ctx: Context, run_id: str) -> Path:
    """Where a local runner's output is written: the run's log file when the data store is a local
    folder, else a temporary file uploaded when the run ends."""
    local = ctx.data_store().local_path(ctx.run_url(run_id, LOG_FILE))
    return local if local is not None else Path(tempfile.gettempdir()) / "digitalhub-logs" / f"{run_id}.txt"
