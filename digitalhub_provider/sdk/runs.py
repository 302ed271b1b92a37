"""The SDK's run calls (``function.run()``, ``run.stop()``, ``run.logs()``, ``run.refresh()``'s
reconciliation), through the run controller."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from digitalhub_provider.entities import Run
from digitalhub_provider.entities.executable import Executable
from digitalhub_provider.errors import EntityError
from digitalhub_provider.launchers.local import LocalLauncher
from digitalhub_provider.runtimes.registry import SERVE_ACTION
from digitalhub_provider.sdk.controller import RunController
from digitalhub_provider.sdk.outcomes import read_logs
from digitalhub_provider.stores.context import install_run_operations

__all__ = ["read_logs", "reconcile_run", "run_executable", "stop_run"]


def run_executable(
    fn: Executable,
    action: str | None = None,
    wait: bool = True,
    timeout: float | None = None,
    on_log: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> Run:
    """Create the run and execute it with the local launcher; ``wait=False`` returns it RUNNING and
    follows it in a thread (``run.wait()``, ``run.stop()``). A service (``action="serve"``) returns
    RUNNING once its readiness probe answers, ``status.service`` telling where."""
    if kwargs.get("local_execution") is False:  # the same refusal as an operator's pod without one
        raise EntityError(
            "local_execution=False asks for the run in a Kubernetes pod, which function.run() does not start: "
            "run it here (local_execution=True, the default), or in a pod through an Airflow task "
            "(PythonRuntimeOperator(local_execution=False) with a Kubernetes connection) or the REST API's "
            "remote execution"
        )
    kwargs["local_execution"] = True
    controller = RunController(fn.ctx)
    run = controller.create(fn, action=action, **kwargs)
    started = controller.submit(fn, run, LocalLauncher(on_line=on_log if on_log is not None else _print_line))
    if started is None:
        return run
    if run.run_kind.action == SERVE_ACTION and started.handle.poll() is None:
        # RUNNING, its service ready: it serves until stopped (run.stop()). Followed while this process
        # lives (a service that dies is finished at once); it outlives this process, and the reconciler
        # finishes it if it dies later.
        follower = threading.Thread(target=controller.follow, args=(run, started), daemon=True)
        follower.name = f"dh-service-{run.id}"
        follower.start()
        return run
    if wait:
        return controller.follow(run, started, timeout=timeout)
    follower = threading.Thread(target=controller.follow, args=(run, started), kwargs={"timeout": timeout})
    follower.name = f"dh-run-{run.id}"
    follower.start()
    return run


def stop_run(run: Run) -> Run:
    return RunController(run.ctx).stop(run)


def reconcile_run(run: Run) -> Run:
    return RunController(run.ctx).reconcile(run)


def _print_line(line: str) -> None:
    print(line, flush=True)


class _Runs:
    """The control plane's run operations, as entities reach them through their context."""

    run_executable = staticmethod(run_executable)
    stop_run = staticmethod(stop_run)
    reconcile_run = staticmethod(reconcile_run)
    read_logs = staticmethod(read_logs)


install_run_operations(_Runs())
