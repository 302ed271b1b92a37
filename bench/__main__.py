"""``python -m bench [--only P1,P3] [--quick] [--rows N] [--out bench/results/latest.json]``.

Runs the figures of GitHub issue 6, prints a table of ratios (each against its anchor measured
in the same run on the same machine) and writes the same figures as JSON. Benchmarks never fail
on time: the exit code is 0 unless a figure could not be measured at all (1) or the arguments
are wrong (2).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    Config,
    FigureResult,
    compile_package,
    loadavg,
    machine_info,
    run_figure,
    scrub_environ,
    table,
    to_json,
    workdir,
)

FIGURES = {
    "P1": ("bench.p1_parse", "parse a DAG file of 100 operators"),
    "P2": ("bench.p2_local_task", "one trivial task on the local launcher, end to end inside Airflow"),
    "P3": ("bench.p3_dataframe", "a DataFrame returned as a dataitem, then read by the next run"),
    "P4": ("bench.p4_metadata", "metadata store with many runs: list a page, create runs"),
    "P5": ("bench.p5_mapped", "mapped tasks under a real scheduler (LocalExecutor)"),
    "P6": ("bench.p6_kubernetes", "one python job on the Kubernetes launcher (stand-in API server)"),
    "P7": ("bench.p7_serve", "a python function served locally against a bare ASGI app on the same server"),
    "P8": ("bench.p8_rest_api", "the REST API with many runs: a page of runs, runs created"),
    "P9": ("bench.p9_console", "the console's runs page with many runs, in headless Chromium"),
    "P10": ("bench.p10_celery", "mapped tasks on the CeleryExecutor, two workers and one"),
    "P11": ("bench.p11_cache", "a run reused from the cache against the same run executed"),
    "P12": ("bench.p12_asset_latency", "a producer task's end to the start of the DAG run its Asset triggers"),
}
DEFAULT_OUT = REPO / "bench" / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--only", help="comma-separated figures, e.g. P1,P3 (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a few minutes)")
    parser.add_argument("--rows", type=int, help="P3: rows of the DataFrame (default 10,000,000; quick 1,000,000)")
    parser.add_argument("--repeats", type=int, help="repeats of every measurement (default: per figure)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--workdir", help="where the temporary homes go (default: a new temporary folder)")
    parser.add_argument(
        "--envs-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "dh-bench-envs",
        help="cache of the runtime virtualenvs (P2's requirement), kept between runs",
    )
    parser.add_argument(
        "--p5-postgres", action="store_true", help="P5: Airflow's database on PostgreSQL (needs asyncpg), not SQLite"
    )
    parser.add_argument(
        "--p5-heartbeat",
        default="5,1",
        help="P5: workers' min_heartbeat_interval(s), seconds, a deployment each (default 5,1; see bench/p5_mapped.py)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs of every worker)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    wanted = [f.strip().upper() for f in args.only.split(",")] if args.only else list(FIGURES)
    unknown = [f for f in wanted if f not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    args.figures = wanted
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scrub_environ()
    compile_package()

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_before = loadavg()
    results: list[FigureResult] = []
    with workdir(args.keep, args.workdir) as tmp:
        cfg = Config(
            quick=args.quick,
            workdir=tmp,
            envs_dir=args.envs_dir,
            rows=args.rows,
            repeats=args.repeats,
            keep=args.keep,
            verbose=not args.quiet,
            p5_postgres=args.p5_postgres,
            p5_heartbeats=tuple(float(h) for h in args.p5_heartbeat.split(",")),
        )
        cfg.log(f"work folder {tmp}{' (kept)' if args.keep else ''}")
        for figure in args.figures:
            module_name, title = FIGURES[figure]
            body = functools.partial(importlib.import_module(module_name).run, cfg)
            results.append(run_figure(figure, title, body, cfg))
    meta: dict[str, Any] = {
        "started": started,
        "mode": "quick" if args.quick else "full",
        "command": " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_info(),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    machine = meta["machine"]
    print()
    print(
        f"machine: {machine['nproc']} cores ({machine['cpu']}), {machine['ram_gib']} GiB RAM; "
        f"Python {machine['python']}, Airflow {machine['versions']['apache-airflow']}, "
        f"cncf-kubernetes {machine['versions']['apache-airflow-providers-cncf-kubernetes']}; "
        f"load average before {load_before}, after {meta['loadavg_after']}; mode {meta['mode']}"
    )
    print()
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(to_json(results, meta), indent=2, default=str) + "\n")
    print(f"\nJSON: {args.out}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
