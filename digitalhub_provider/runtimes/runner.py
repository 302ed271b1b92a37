"""Load a RunSpec, dispatch it to its runtime, write the RunResult."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from datetime import datetime, timezone

from digitalhub_provider.config import ENV_TEE_LOGS, Settings
from digitalhub_provider.runtimes.context import RunnerContext
from digitalhub_provider.runtimes.contract import (
    ENV_RUNSPEC,
    LOG_FILE,
    RUNSPEC_FILE,
    RunResult,
    RunSpec,
    is_interrupt,
)
from digitalhub_provider.runtimes.registry import RUNNERS
from digitalhub_provider.states import State


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def run_from_url(url: str) -> int:
    """The runner process: read the RunSpec at ``url``, run it, write the RunResult; 0 when COMPLETED."""
    ctx = RunnerContext(Settings.from_env())
    spec = _inline_runspec(ctx, url) or RunSpec.from_json(ctx.data_store(url).read_bytes(url))
    # "1": a temporary file uploaded next to the RunResult (pods); a path: the log file the local
    # launcher names, written here so that the log does not depend on the caller staying alive.
    tee = os.environ.get(ENV_TEE_LOGS)
    logs = tee_output(None if tee == "1" else tee) if tee else None
    started = _now()
    try:
        result = execute(spec, ctx)
    except BaseException as exc:  # an interrupt: the result must be written whatever happened
        result = _error(spec, exc, started)
    end_own_group()
    if logs is not None:
        path = logs()
        if tee == "1":
            log_url = ctx.run_url(spec.run_id, LOG_FILE)
            ctx.data_store(log_url).upload(path, log_url)
            os.unlink(path)
    write_result(ctx, spec, result)
    return 0 if result.state == State.COMPLETED.value else 1


def execute(spec: RunSpec, ctx: RunnerContext) -> RunResult:
    """Run ``spec`` with the runtime it names. Every failure is in the result; only an interrupt
    (see :func:`~digitalhub_provider.runtimes.contract.is_interrupt`) propagates."""
    started = _now()
    ctx.run_id = spec.run_id
    try:
        module = RUNNERS.get((spec.runtime, spec.action))
        if module is None:
            result = RunResult(
                run_id=spec.run_id, state=State.ERROR.value, message=f"no runner for {spec.runtime}+{spec.action}"
            )
        else:
            result = importlib.import_module(module).run_job(spec, ctx)
    except BaseException as exc:
        if is_interrupt(exc):
            raise
        return _error(spec, exc, started)
    result.timings = {"started": started, "finished": _now(), **result.timings}
    return result


def write_result(ctx: RunnerContext, spec: RunSpec, result: RunResult) -> None:
    ctx.data_store(spec.result_url).write_bytes(spec.result_url, result.to_json())


def _error(spec: RunSpec, exc: BaseException, started: str) -> RunResult:
    return RunResult(
        run_id=spec.run_id,
        state=State.ERROR.value,
        message=f"{type(exc).__name__}: {exc}",
        traceback=traceback.format_exc(),
        timings={"started": started, "finished": _now()},
    )


def end_own_group() -> None:
    """SIGTERM what the handler started and left running, when this runner leads its process group
    (the local launcher starts it so): the run ends when its handler returns, and the launcher
    SIGKILLs whatever is left once the runner exits."""
    if os.getpgid(0) != os.getpid():
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's signal reaches this process too
    try:
        os.killpg(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _inline_runspec(ctx: RunnerContext, url: str) -> RunSpec | None:
    """The RunSpec given inline (``DIGITALHUB_RUNSPEC``, pods) when it is the one ``url`` names."""
    raw = os.environ.get(ENV_RUNSPEC)
    if not raw:
        return None
    spec = RunSpec.from_json(raw.encode())
    return spec if ctx.run_url(spec.run_id, RUNSPEC_FILE) == url else None


def tee_output(path: str | None = None) -> Callable[[], str]:
    """Copy everything written to file descriptors 1 and 2 (this process's and its children's) to a file too.

    Pods use it, where nothing else keeps the log once the pod is deleted (the runner uploads
    the file next to the RunResult), and runs inside the Airflow task, whose output would
    otherwise reach only the task log. The copy is appended to ``path`` (a new temporary file
    when None). Returns a function that stops the copy and gives the file's path.
    """
    if path is None:
        fd, path = tempfile.mkstemp(prefix="dh-run-", suffix=".log")
        sink = os.fdopen(fd, "wb", buffering=0)
    else:
        sink = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by the pump when the copy stops
    read_end, write_end = os.pipe()
    original_out, original_err = os.dup(1), os.dup(2)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        console = True
        try:
            while chunk := os.read(read_end, 65536):
                if console:
                    try:
                        os.write(original_out, chunk)
                    except OSError:  # the caller reading the console is gone: the file copy goes on
                        console = False
                sink.write(chunk)
        finally:
            sink.close()
            os.close(read_end)
            os.close(original_out)

    thread = threading.Thread(target=pump, name="digitalhub-tee", daemon=True)
    thread.start()

    def stop() -> str:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(original_out, 1)  # the pipe's last write end closes: the pump sees EOF...
        os.dup2(original_err, 2)
        os.close(original_err)
        thread.join(10)  # ...unless a process the run started still holds it: it copies on meanwhile
        return path

    return stop
