"""P11: a cached run against the same run executed.

A P5-style task (a python function without requirements, a small DataFrame output and a result) run
through the SDK on the local launcher (a subprocess runner, as a worker runs it): executed with
``cache=False`` each time, then with ``cache=True`` after one executed run, so that every later run
is a hit. Wall time of ``function.run()`` from call to COMPLETED, median of the repeats; the anchor is
the executed run. No target set by the issue.
"""

from __future__ import annotations

import os
import sys
import time

from bench.common import Config, FigureResult, median, ratio_row

CODE = """
import pandas as pd

def square(n):
    return pd.DataFrame({"n": list(range(n)), "square": [i * i for i in range(n)]}), n * n
"""


def run(cfg: Config, fig: FigureResult) -> None:
    repeats = cfg.reps(full=20, quick=5)
    os.environ["DIGITALHUB_HOME"] = str(cfg.figure_dir("P11") / "dh")
    from digitalhub_provider.sdk.context import reset_context

    reset_context()
    import digitalhub_provider as dh

    fn = dh.new_function(project="bench", name="square", kind="python", code=CODE, handler="square",
                         python_version=f"PYTHON3_{sys.version_info.minor}")  # fmt: skip
    call = {"parameters": {"n": 100}, "outputs": ["table", "value"], "on_log": lambda _line: None}

    def timed(**extra: object) -> float:
        t0 = time.perf_counter()
        done = fn.run(**call, **extra)
        elapsed = time.perf_counter() - t0
        if done.state != "COMPLETED":
            raise RuntimeError(f"P11: a run ended {done.state}: {done.status.get('message')}")
        return elapsed * 1000

    timed()  # warm-up: imports, the first runner's start
    executed = [timed() for _ in range(repeats)]
    timed(cache=True)  # the run the next ones reuse
    cached = [timed(cache=True) for _ in range(repeats)]
    hits = [r for r in dh.list_runs("bench") if (r.status.get("cache") or {}).get("hit")]
    if len(hits) != repeats:
        raise RuntimeError(f"P11: {len(hits)} cache hits, {repeats} expected")
    fig.rows.append(ratio_row("P11", "a run reused from the cache, function.run() to COMPLETED (median)",
                              median(cached), "ms", "the same run executed (subprocess runner)", median(executed),
                              None, note="no target"))  # fmt: skip
    fig.details.update({"repeats": repeats, "executed_ms": executed, "cached_ms": cached})
