"""The in-process launcher: a python run inside the Airflow task's own interpreter.

For python functions without requirements on the worker's own Python (docs/design.md,
"Runtime environments"). In Airflow 3 every task instance already runs in a process of its
own, so a second interpreter for the runner buys little isolation and costs a fresh interpreter, the
runner's imports and the stores opened a second time (about 0.15 s a task). The run
contract is unchanged: the RunSpec and the RunResult are files on the data store, the
control plane alone writes the run's status, and the run's log file gets everything
written to stdout and stderr while it runs (a copy at file-descriptor level, so output of
processes the handler starts is kept too; the Airflow task log still sees it).

What the handler sees is what a runner process would give it: the connection's settings
as ``DIGITALHUB_*`` environment variables (set for the run's duration, then restored), its
source imported fresh (its modules and ``sys.path`` entry are removed afterwards, so two
runs in one process never share a module), and ``SystemExit`` from the handler fails the
run, not the task process.

Stopping: Airflow calls the operator's ``on_kill`` from its SIGTERM handler, in the main
thread, which is the thread running the handler; :meth:`InProcessRun.kill` raises
:class:`RunStopped` there, which unwinds the handler like ``KeyboardInterrupt`` would.
The execution timeout (SIGALRM) unwinds it the same way with Airflow's own exception.
A handler blocked in C code sees either only when it returns to Python; the supervisor's
SIGKILL after its grace period is then the last word, as for any Airflow task.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitalhub_provider.config import Settings
from digitalhub_provider.launchers.base import Handle, Launcher, log_path
from digitalhub_provider.runtimes.contract import RunSpec
from digitalhub_provider.states import State

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run
    from digitalhub_provider.stores.context import Context

IN_PROCESS = "in-process"  # the run's ``status.launcher``


class InProcessLauncher(Launcher):
    """Nothing to build and nothing to start: BUILT, READY and RUNNING are saved in one write, and
    the handler runs when the controller waits on the handle (in the waiting thread)."""

    name = IN_PROCESS
    quick = True

    def start(self, spec: RunSpec, run: Run, ctx: Context) -> InProcessRun:
        return InProcessRun(log_path(ctx, run.id), spec, ctx.settings)


class RunStopped(BaseException):
    """Raised in the thread running an in-process handler when its run is stopped."""


class InProcessRun(Handle):
    """One run of the runner in this interpreter; ``kill`` is what stopping the run calls."""

    pid: int | None = None  # no process of its own to signal

    def __init__(self, log_path: Path, spec: RunSpec, settings: Settings) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.spec = spec
        self.settings = settings
        self.status: dict[str, Any] = {"launcher": IN_PROCESS, "host": socket.gethostname()}
        self.killed = False
        self.exit_code: int | None = None
        self._thread: threading.Thread | None = None

    def wait(self, timeout: float | None = None) -> int:
        """Runs the handler here, now (``timeout`` is the caller's: Airflow's execution_timeout)."""
        if self.exit_code is None:
            self.exit_code = self.run(self.spec, self.settings)
        return self.exit_code

    def poll(self) -> int | None:
        return self.exit_code

    def run(self, spec: RunSpec, settings: Settings) -> int:
        """Run ``spec`` here and write its RunResult: 0 when it COMPLETED, 1 when it failed, -15 when
        it was stopped (no result then: the run is already STOPPED). Interrupts (Airflow's timeout)
        propagate after the process is restored."""
        from digitalhub_provider.runtimes.context import RunnerContext
        from digitalhub_provider.runtimes.runner import execute, tee_output, write_result

        ctx = RunnerContext(settings)
        stop_tee = tee_output(str(self.log_path))
        try:
            with _streams_on_fds(), _environment(settings.to_env()), _fresh_imports():
                self._thread = threading.current_thread()
                try:
                    if self.killed:
                        raise RunStopped("the run was stopped before it started")
                    result = execute(spec, ctx)
                finally:
                    self._thread = None
        except RunStopped:
            return -15
        finally:
            stop_tee()
        write_result(ctx, spec, result)
        return 0 if result.state == State.COMPLETED.value else 1

    def kill(self, grace: float = 5.0) -> None:
        """Stop the handler: raises :class:`RunStopped` when called in the thread running it
        (Airflow's SIGTERM handler runs there); from any other thread it only marks the run."""
        self.killed = True
        if self._thread is not None and self._thread is threading.current_thread():
            self._thread = None
            raise RunStopped("the run was stopped")


@contextmanager
def _streams_on_fds() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` writing to file descriptors 1 and 2 for the run's duration.

    They usually do; but a host may have replaced them with objects that write elsewhere (pytest's
    capture, a logging proxy), and then ``print`` in the handler would miss the run's log."""
    saved = sys.stdout, sys.stderr
    out = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    err = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        for stream in (out, err):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = saved
        out.close()
        err.close()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _fresh_imports() -> Iterator[None]:
    """Forget, afterwards, the ``sys.path`` entries the run added and the modules it imported from
    them (its own source, in a temporary folder); libraries it imported stay loaded.

    The modules imported meanwhile are the keys after the last one of now (``sys.modules`` keeps
    insertion order): read from the end, not by copying all the keys, whose reference counts would
    each dirty a page a forked task process shares with its parent (~2 ms at 1,400 modules)."""
    path_before = list(sys.path)
    last = next(reversed(sys.modules), None)
    try:
        yield
    finally:
        added = [p for p in sys.path if p not in path_before]
        sys.path[:] = [p for p in sys.path if p in path_before]
        roots = tuple(os.path.join(os.path.abspath(p), "") for p in added if p)
        for name in _imported_after(last) if roots else ():
            file = getattr(sys.modules[name], "__file__", None)
            if file and os.path.abspath(file).startswith(roots):
                del sys.modules[name]


def _imported_after(last: str | None) -> list[str]:
    """The names ``sys.modules`` got after ``last`` (all of them when ``last`` is gone)."""
    names = []
    for name in reversed(sys.modules):
        if name == last:
            break
        names.append(name)
    return names
