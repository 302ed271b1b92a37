"""Load a RunSpec, dispatch it to its runtime, write the RunResult."""

from __future__ import annotations

import importlib
import traceback
from datetime import datetime, timezone

from digitalhub_provider.config import Settings
from digitalhub_provider.runtimes.context import RunnerContext
from digitalhub_provider.runtimes.contract import RunResult, RunSpec
from digitalhub_provider.runtimes.registry import RUNNERS


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def run_from_url(url: str) -> int:
    ctx = RunnerContext(Settings.from_env())
    spec = RunSpec.from_json(ctx.data_store(url).read_bytes(url))
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
    ctx.data_store(spec.result_url).write_bytes(spec.result_url, result.to_json())
    return 0 if result.state == "COMPLETED" else 1
