"""P3: a handler returns a DataFrame (10 million rows, about 400 MB) as a dataitem; the next run reads it.

On two data stores: a local directory, and moto's S3 server (``python -m moto.server``, its own
process group). Each run goes through the SDK (``function.run``, local launcher) in a fresh
interpreter that does only that run, so ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` afterwards is
the runner subprocess's peak RSS.

* write: from the moment the handler returns its DataFrame (it returns ``time.time()`` as a
  result) to the runner's ``finished`` timing (after the output is written and uploaded);
* read: ``di.as_df()`` timed inside the next run's handler.

The anchor: pyarrow writing the same table (``Table.from_pandas`` + ``parquet.write_table``)
straight to the same store (a path, or ``pyarrow.fs.S3FileSystem`` on the same moto server),
and ``parquet.read_table(...).to_pandas()``, each in a fresh interpreter.
"""

from __future__ import annotations

import resource
import shutil
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    MB,
    Config,
    FigureResult,
    Row,
    child_env,
    median,
    ratio_row,
    run_worker,
    s3_client,
    s3_env,
    summary,
    worker_main,
)

MODULE = "bench.p3_dataframe"
PEAK_TARGET = 2.5
THROUGHPUT_TARGET = 0.9

CODE = """
import resource
import time

from digitalhub_provider import handler


def frame(rows):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(42)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "a": rng.random(rows),
            "b": rng.random(rows),
            "c": rng.random(rows),
            "k": rng.integers(0, 1000, rows, dtype="int64"),
        },
        copy=False,
    )


@handler(outputs=["data", "nbytes", "ready_at", "handler_peak"])
def make(rows: int):
    import pyarrow.parquet  # noqa: F401  (what writing needs, imported as the anchor does before its clock)

    df = frame(rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return df, int(df.memory_usage(deep=True).sum()), time.time(), peak


@handler(outputs=["rows", "seconds", "nbytes"])
def read(di):
    import pandas  # noqa: F401  (what reading needs, imported as the anchor does before its clock)
    import pyarrow.parquet  # noqa: F401

    started = time.perf_counter()
    df = di.as_df()
    seconds = time.perf_counter() - started
    return len(df), seconds, int(df.memory_usage(deep=True).sum())
"""


def _frame(rows: int) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(CODE, "p3_handler", "exec"), namespace)  # the very function the handler uses
    return namespace["frame"](rows)


def _children_peak() -> int:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def _function(name: str, handler: str) -> Any:
    import digitalhub_provider as dh

    return dh.new_function(
        project="bench",
        name=name,
        kind="python",
        code=CODE,
        handler=handler,
        python_version=f"PYTHON3_{sys.version_info.minor}",
    )


def _check(run: Any) -> None:
    if run.status.state != "COMPLETED":
        raise RuntimeError(f"run {run.key} ended {run.status.state}: {run.status.message}\n{run.logs()[-3000:]}")


# -- workers -------------------------------------------------------------------------------------------------
def dh_write(rows: int) -> dict[str, Any]:
    fn = _function("make-frame", "make")
    t0 = time.perf_counter()
    run = fn.run(action="job", parameters={"rows": rows}, local_execution=True, on_log=lambda line: None)
    wall = time.perf_counter() - t0
    _check(run)
    results = run.status.get("results")
    finished = datetime.fromisoformat(run.status.get("timings")["handler_finished"]).timestamp()
    return {
        "key": run.output("data", as_key=True),
        "path": run.output("data").spec["path"],
        "nbytes": results["nbytes"],
        "write_s": finished - results["ready_at"],
        "handler_peak": results["handler_peak"],
        "runner_peak": _children_peak(),
        "run_wall_s": wall,
    }


def dh_read(key: str) -> dict[str, Any]:
    fn = _function("read-frame", "read")
    t0 = time.perf_counter()
    run = fn.run(action="job", inputs={"di": key}, local_execution=True, on_log=lambda line: None)
    wall = time.perf_counter() - t0
    _check(run)
    results = run.status.get("results")
    return {
        "rows": results["rows"],
        "nbytes": results["nbytes"],
        "read_s": results["seconds"],
        "runner_peak": _children_peak(),
        "run_wall_s": wall,
    }


def _pyarrow_target(path: str, s3: dict[str, str] | None) -> tuple[str, Any]:
    if s3 is None:
        return path, None
    from pyarrow import fs

    endpoint = s3["endpoint"]
    scheme, _, host = endpoint.partition("://")
    filesystem = fs.S3FileSystem(
        access_key="testing", secret_key="testing", region="us-east-1", endpoint_override=host, scheme=scheme
    )
    return path.removeprefix("s3://"), filesystem


def anchor_write(rows: int, path: str, s3: dict[str, str] | None = None) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = _frame(rows)
    target, filesystem = _pyarrow_target(path, s3)
    t0 = time.perf_counter()
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, target, filesystem=filesystem)
    seconds = time.perf_counter() - t0
    return {"write_s": seconds, "nbytes": int(df.memory_usage(deep=True).sum())}


def anchor_read(path: str, s3: dict[str, str] | None = None) -> dict[str, Any]:
    import pandas  # noqa: F401  (to_pandas imports it: outside the clock, as in the handler)
    import pyarrow.parquet as pq

    target, filesystem = _pyarrow_target(path, s3)
    t0 = time.perf_counter()
    df = pq.read_table(target, filesystem=filesystem).to_pandas()
    seconds = time.perf_counter() - t0
    return {"read_s": seconds, "rows": len(df), "nbytes": int(df.memory_usage(deep=True).sum())}


# -- the figure --------------------------------------------------------------------------------------------------
def _store(cfg: Config, fig: FigureResult, store: str, base: Path, env: dict[str, str], rows: int, s3: Any) -> None:
    log = base / f"workers-{store}.log"
    reps = cfg.reps(full=4, quick=3)  # writes of 400 MB vary by ±20% run to run here: a median of 4
    data_root = env.get("DIGITALHUB_DATA_URL") or str(Path(env["DIGITALHUB_HOME"]) / "data")
    s: dict[str, list[float]] = {k: [] for k in ("dh_w", "dh_r", "pa_w", "pa_r", "peak_w", "peak_r", "pa_peak_w")}
    s.update({"pa_peak_r": [], "handler_peak": [], "wall_w": [], "wall_r": []})
    nbytes = 0

    # the runner with nothing to hold: its interpreter, pandas and pyarrow (what any run pays)
    idle = run_worker(MODULE, "dh_write", {"rows": 1}, env, log).data["runner_peak"]
    for rep in range(reps):
        w = run_worker(MODULE, "dh_write", {"rows": rows}, env, log).data
        r = run_worker(MODULE, "dh_read", {"key": w["key"]}, env, log).data
        if r["rows"] != rows:
            raise RuntimeError(f"read {r['rows']} rows, wrote {rows}")
        anchor_path = f"{data_root}/anchor/{uuid.uuid4().hex}.parquet"
        if s3 is None:
            Path(anchor_path).parent.mkdir(parents=True, exist_ok=True)
        s3_args = {"endpoint": env["DIGITALHUB_S3_ENDPOINT_URL"]} if s3 is not None else None
        aw = run_worker(MODULE, "anchor_write", {"rows": rows, "path": anchor_path, "s3": s3_args}, env, log)
        ar = run_worker(MODULE, "anchor_read", {"path": anchor_path, "s3": s3_args}, env, log)
        nbytes = w["nbytes"]
        s["dh_w"].append(w["write_s"])
        s["dh_r"].append(r["read_s"])
        s["pa_w"].append(aw.data["write_s"])
        s["pa_r"].append(ar.data["read_s"])
        s["peak_w"].append(w["runner_peak"])
        s["peak_r"].append(r["runner_peak"])
        s["handler_peak"].append(w["handler_peak"])
        s["pa_peak_w"].append(aw.maxrss_bytes)
        s["pa_peak_r"].append(ar.maxrss_bytes)
        s["wall_w"].append(w["run_wall_s"])
        s["wall_r"].append(r["run_wall_s"])
        cfg.log(
            f"P3 {store} {rep + 1}/{reps}: write {w['write_s']:.2f}s (pyarrow {aw.data['write_s']:.2f}s), "
            f"read {r['read_s']:.2f}s (pyarrow {ar.data['read_s']:.2f}s), "
            f"runner peak {w['runner_peak'] / MB:.0f}/{r['runner_peak'] / MB:.0f} MB"
        )
        _cleanup(data_root, [w["path"], anchor_path], s3)

    mbs = nbytes / MB
    small = " — a small frame: the interpreter's own memory dominates" if nbytes < 200 * MB else ""
    fig.rows += [
        ratio_row("P3", f"write {mbs:,.0f} MB DataFrame as a dataitem, {store}", mbs / median(s["dh_w"]), "MB/s",
                  "pyarrow write_table", mbs / median(s["pa_w"]), THROUGHPUT_TARGET, higher_is_better=True),
        ratio_row("P3", f"read it back (as_df), {store}", mbs / median(s["dh_r"]), "MB/s",
                  "pyarrow read_table", mbs / median(s["pa_r"]), THROUGHPUT_TARGET, higher_is_better=True),
    ]  # fmt: skip
    for what, peak, anchor_peak in (("write", s["peak_w"], s["pa_peak_w"]), ("read", s["peak_r"], s["pa_peak_r"])):
        measured = max(peak) / nbytes
        fig.rows.append(
            Row("P3", f"runner peak RSS ÷ DataFrame size, {what} run, {store}{small}", measured, "x",
                "pyarrow process peak ÷ size", max(anchor_peak) / nbytes, f"≤ {PEAK_TARGET:g}x size",
                measured <= PEAK_TARGET)
        )  # fmt: skip
    fig.details[store] = {
        "rows": rows,
        "dataframe_bytes": nbytes,
        "repeats": reps,
        "seconds": {k: summary(v) for k, v in s.items() if not k.startswith(("peak", "pa_peak", "handler"))},
        "peak_rss_mb": {k: [round(x / MB) for x in v] for k, v in s.items() if "peak" in k},
        "idle_runner_peak_mb": round(idle / MB),
        "runner_peak_above_idle_over_size": {
            "write": round((max(s["peak_w"]) - idle) / nbytes, 2),
            "read": round((max(s["peak_r"]) - idle) / nbytes, 2),
        },
    }


def _cleanup(data_root: str, paths: list[str], s3: Any) -> None:
    """Free the store between repeats (moto keeps every object in memory)."""
    for path in paths:
        if s3 is not None:
            bucket, _, key = path.removeprefix("s3://").partition("/")
            s3.delete_object(Bucket=bucket, Key=key)
        else:
            p = Path(path)
            if p.name == "data.parquet":
                shutil.rmtree(p.parent, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def run(cfg: Config, fig: FigureResult) -> None:
    from tests.servers import moto_server

    rows = cfg.rows or cfg.size(10_000_000, 1_000_000)
    base = cfg.figure_dir("P3")
    local_base = base / "local"
    _store(cfg, fig, "local directory", local_base, child_env(local_base, cfg.envs_dir), rows, None)
    s3_base = base / "s3"
    s3_base.mkdir(exist_ok=True)
    with moto_server(s3_base) as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket="bench")
        env = child_env(s3_base, cfg.envs_dir, s3_env(endpoint, "bench"))
        _store(cfg, fig, "S3 (moto server)", s3_base, env, rows, client)


if __name__ == "__main__":
    worker_main({"dh_write": dh_write, "dh_read": dh_read, "anchor_write": anchor_write, "anchor_read": anchor_read})
