"""Load a RunSpec, dispatch it to its runtime, write the RunResult."""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from datetime import datetime, timezone

from digitalhub_provider.config import ENV_TEE_LOGS, Settings
from digitalhub_provider.runtimes.context import RunnerContext
from digitalhub_provider.runtimes.contract import ENV_RUNSPEC, LOG_FILE, RUNSPEC_FILE, RunResult, RunSpec
from digitalhub_provider.runtimes.registry import RUNNERS


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def run_from_url(url: str) -> int:
    ctx = RunnerContext(Settings.from_env())
    spec = _inline_runspec(ctx, url) or RunSpec.from_json(ctx.data_store(url).read_bytes(url))
    logs = _tee_output() if os.environ.get(ENV_TEE_LOGS) else None
    started = _now()
    try:
        module = RUNNERS.get((spec.runtime, spec.action))
        if module is None:
            result = RunResult(run_id=spec.run_id, state="ERROR", message=f"no runner for {spec.runtime}+{spec.action}")
        else:
            result = importlib.import_module(module).run_job(spec, ctx)
    except BaseException as exc:  # the result must be written whatever happened
        result = RunResult(
            run_id=spec.run_id,
            state="ERROR",
            message=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
    result.timings = {"started": started, "finished": _now(), **result.timings}
    if logs is not None:
        path = logs()
        log_url = ctx.run_url(spec.run_id, LOG_FILE)
        ctx.data_store(log_url).upload(path, log_url)
        os.unlink(path)
    ctx.data_store(spec.result_url).write_bytes(spec.result_url, result.to_json())
    return 0 if result.state == "COMPLETED" else 1


def _inline_runspec(ctx: RunnerContext, url: str) -> RunSpec | None:
    """The RunSpec given inline (``DIGITALHUB_RUNSPEC``, pods) when it is the one ``url`` names."""
    raw = os.environ.get(ENV_RUNSPEC)
    if not raw:
        return None
    spec = RunSpec.from_json(raw.encode())
    return spec if ctx.run_url(spec.run_id, RUNSPEC_FILE) == url else None


def _tee_output() -> Callable[[], str]:
    """Copy everything written to stdout and stderr (this process's and the handler's) to a file too.

    Used in pods, where nothing else keeps the log once the pod is deleted: the runner
    uploads the file next to the RunResult. Returns a function that stops the copy and
    gives the file's path.
    """
    fd, path = tempfile.mkstemp(prefix="dh-run-", suffix=".log")
    sink = os.fdopen(fd, "wb")
    read_end, write_end = os.pipe()
    original = os.dup(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        while chunk := os.read(read_end, 65536):
            os.write(original, chunk)
            sink.write(chunk)
        sink.flush()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()

    def stop() -> str:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(original, 1)  # the pipe's last write ends close: the pump sees EOF
        os.dup2(original, 2)
        thread.join(10)
        sink.close()
        os.close(read_end)
        return path

    return stop
