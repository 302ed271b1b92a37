"""P5: 50 mapped tasks (``.expand``) of a trivial handler under a real scheduler with the LocalExecutor.

A real Airflow deployment (``tests/airflow_servers.py``: api-server, scheduler and dag-processor,
LocalExecutor, parallelism 4, each server in its own process group, stopped on exit) in a
throw-away AIRFLOW_HOME, with a DAG folder holding two DAGs: 50 mapped PythonRuntimeOperators
(local launcher) and the same with PythonOperator. Each DAG is triggered through the REST API,
alternately; the makespan is the DAG run's start to end as Airflow records it. One untimed run
of each first (the function is created, caches are warm). DAG files are re-parsed every 30 s,
Airflow's default (the test deployment's 5 s made every parse stall scheduling for ~3 s on this
machine's SQLite database, several times per DAG run). Besides the makespan, the CPU seconds
each server's process tree used during a DAG run (the scheduler's tree holds the LocalExecutor
workers and the task processes they fork) show where the machine's time went.

Each deployment runs twice (``--p5-heartbeat``, default ``5,1``): with the workers'
``min_heartbeat_interval`` at Airflow's default 5 s (the figure the target applies to: what a user
gets), and at 1 s. The interval is also how long a task's supervisor may keep its executor slot
after the task process is done: when the process closes its sockets before it can be reaped, the
supervisor's loop finds nothing left to read and sleeps in ``select`` for that interval before it
looks at the process again (``ActivitySubprocess._monitor_subprocess`` in Airflow 3.3.2). On this
machine that happened to a quarter or more of the tasks of either DAG, so at 5 s the makespan
mostly counts those sleeps (8 to 29 s for the same DAG: the median of 15 runs is taken); at 1 s it
follows what the tasks themselves cost. The benchmark records, per DAG, how long each supervisor
kept its slot after its task instance ended (``exit_wait_seconds``).

Airflow's own database is SQLite, as in the tests. With ``--p5-postgres`` it is PostgreSQL (Debian's
server, its own process group), as a production LocalExecutor deployment has it; Airflow 3 then
also needs an async driver (``asyncpg``), which the dev extra does not install.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from bench.common import Config, FigureResult, median, ratio_row, summary

TARGET = 1.2
AIRFLOW_HEARTBEAT = 5.0  # [workers] min_heartbeat_interval's default: the target's setting
HEADER = """from datetime import datetime

from airflow.sdk import DAG

CODE = "def handler(i):\\n    return i + 1\\n"


def handler(i):
    return i + 1


"""
DAGS = {
    "p5_dh": "from digitalhub_provider.operators import PythonRuntimeOperator\n"
    + HEADER
    + 'with DAG(dag_id="p5_dh", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + '    PythonRuntimeOperator.partial(task_id="t", project="bench", function="trivial", code=CODE,\n'
    + '                                  handler="handler").expand(parameters=[{{"i": i}} for i in range({n})])\n',
    "p5_python": "from airflow.providers.standard.operators.python import PythonOperator\n"
    + HEADER
    + 'with DAG(dag_id="p5_python", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + '    PythonOperator.partial(task_id="t", python_callable=handler).expand(\n'
    + '        op_kwargs=[{{"i": i}} for i in range({n})]\n'
    + "    )\n",
}


def _seconds(start: str | None, end: str | None) -> float | None:
    from datetime import datetime

    if not start or not end:
        return None
    return (
        datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
    ).total_seconds()


def _finished_workloads(scheduler_log: Path) -> tuple[dict[str, str], dict[str, tuple[str, float]]]:
    """From the scheduler's log: the DAG of each task instance ("TaskInstance Finished"), and when each
    task's supervisor was done with it and how long it held its LocalExecutor slot ("Workload
    finished"). A slot is free only then, which can be seconds after the task instance ended."""
    text = scheduler_log.read_text(errors="replace") if scheduler_log.exists() else ""
    dag_of = {
        m.group(2): m.group(1) for m in re.finditer(r"TaskInstance Finished: dag_id=(\w+), .*?ti_id=([0-9a-f-]+)", text)
    }
    done = {
        m.group(3): (m.group(1), float(m.group(2)))
        for m in re.finditer(
            r"^(\S+) \[info\s*\] Workload finished .*?duration=([0-9.]+) .*?workload_id=([0-9a-f-]+)", text, re.M
        )
    }
    return dag_of, done


def _exit_waits(done: dict[str, tuple[str, float]], ended: dict[str, tuple[str, str]]) -> dict[str, list[float]]:
    """Per DAG, seconds from each task instance's end (as the API records it) to its supervisor's
    "Workload finished"."""
    from datetime import datetime

    waits: dict[str, list[float]] = {}
    for ti_id, (dag_id, end) in ended.items():
        if ti_id in done:
            finished = datetime.fromisoformat(done[ti_id][0].replace("Z", "+00:00"))
            waits.setdefault(dag_id, []).append(round((finished - datetime.fromisoformat(end)).total_seconds(), 3))
    return waits


def _cpu_seconds(dep: Any) -> dict[str, float]:
    """CPU seconds (user + system) each server's process tree has used so far: the server, its live
    descendants, and the descendants it has reaped (the scheduler's LocalExecutor workers reap the
    task processes they fork)."""
    import psutil

    used: dict[str, float] = {}
    for name, proc in dep.procs.items():
        total = 0.0
        try:
            root = psutil.Process(proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in tree:
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system + t.children_user + t.children_system
        used[name] = total
    return used


def _one_run(dep: Any, dag_id: str, tasks: int) -> dict[str, Any]:
    cpu_before = _cpu_seconds(dep)
    run_id = dep.trigger(dag_id, {})
    state = dep.wait_run(dag_id, run_id, timeout=max(600.0, tasks * 20.0))
    if state != "success":
        raise RuntimeError(f"{dag_id} {run_id} ended {state}: {dep.task_states(dag_id, run_id)}\n{dep.diagnostics()}")
    dr = dep.api("GET", f"dags/{dag_id}/dagRuns/{run_id}").json()
    tis = dep.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}).json()
    durations = [ti["duration"] for ti in tis.get("task_instances", []) if ti.get("duration") is not None]
    ended = {
        ti["id"]: (dag_id, ti["end_date"].replace("Z", "+00:00"))
        for ti in tis.get("task_instances", [])
        if ti.get("id") and ti.get("end_date")
    }
    if len(durations) != tasks:
        raise RuntimeError(f"{dag_id}: {len(durations)} task instances with a duration, expected {tasks}")
    time.sleep(2)  # the last supervisors finish and are reaped
    cpu_after = _cpu_seconds(dep)
    return {
        "cpu_seconds": {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 2) for k in cpu_after},
        "makespan_s": _seconds(dr.get("start_date"), dr.get("end_date")),
        "queued_to_end_s": _seconds(dr.get("queued_at"), dr.get("end_date")),
        "task_duration_median_s": median(durations),
        "task_duration_sum_s": sum(durations),
        "ended": ended,
    }


def run(cfg: Config, fig: FigureResult) -> None:
    import importlib.util
    from contextlib import ExitStack

    from tests.servers import pg_bindir, postgres_server

    with ExitStack() as stack:
        db = "SQLite"
        extra: dict[str, str] = {}
        if cfg.p5_postgres:
            if pg_bindir() is None or importlib.util.find_spec("asyncpg") is None:
                raise RuntimeError("--p5-postgres needs PostgreSQL's binaries and the asyncpg driver")
            pg_base = cfg.figure_dir("P5") / "pg"
            pg_base.mkdir(exist_ok=True)
            url = stack.enter_context(postgres_server(pg_base))
            extra["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
            extra["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = url.replace("+psycopg2", "+asyncpg")
            db = "PostgreSQL"
        for heartbeat in cfg.p5_heartbeats:
            _run(cfg, fig, extra, db, heartbeat)


def _run(cfg: Config, fig: FigureResult, db_env: dict[str, str], db: str, heartbeat: float) -> None:
    from tests.airflow_servers import airflow_deployment

    tasks = cfg.size(50, 10)
    # makespans of one DAG vary by ±40% from run to run at a 5 s heartbeat, ±10% at 1 s
    reps = cfg.reps(full=15 if heartbeat >= AIRFLOW_HEARTBEAT else 5, quick=1)
    base = cfg.figure_dir("P5") / f"heartbeat-{heartbeat:g}s"
    dags = base / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for dag_id, text in DAGS.items():
        (dags / f"{dag_id}.py").write_text(text.format(n=tasks))
    extra = {
        **db_env,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "DIGITALHUB_HOME": str(base / "dh"),
        "DIGITALHUB_ENVS_DIR": str(cfg.envs_dir),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",  # Airflow's default
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": f"{heartbeat:g}",  # see the module's docstring
    }
    results: dict[str, list[dict[str, Any]]] = {d: [] for d in DAGS}
    started = time.perf_counter()
    with airflow_deployment(base / "airflow", extra) as dep:
        cfg.log(f"P5 Airflow up in {time.perf_counter() - started:.0f}s ({dep.url}), heartbeat {heartbeat:g} s")
        for dag_id in DAGS:
            dep.wait_dag(dag_id, timeout=300)
        for dag_id in DAGS:  # warm-up, untimed
            warm = _one_run(dep, dag_id, tasks)
            cfg.log(f"P5 warm-up {dag_id}: makespan {warm['makespan_s']:.1f}s")
        for rep in range(reps):
            for dag_id in DAGS:
                res = _one_run(dep, dag_id, tasks)
                results[dag_id].append(res)
                cfg.log(f"P5 {rep + 1}/{reps} {dag_id}: makespan {res['makespan_s']:.1f}s")
        parallelism = dep.env.get("AIRFLOW__CORE__PARALLELISM")
    details: dict[str, Any] = {"processes_left_behind": dep.left_behind or []}
    dag_of, done = _finished_workloads(dep.home / "scheduler.log")
    held: dict[str, list[float]] = {}
    for ti_id, (_, seconds) in done.items():
        held.setdefault(dag_of.get(ti_id, "?"), []).append(round(seconds, 2))
    details["slot_held_seconds"] = {d: {**summary(v), "over_4s": sum(x > 4 for x in v)} for d, v in held.items()}
    details["server_stop_seconds"] = dep.stop_seconds
    ended = {k: v for runs in results.values() for r in runs for k, v in r.pop("ended").items()}
    waits = _exit_waits(done, ended)
    details["exit_wait_seconds"] = {
        d: {**summary(v), f"over_{heartbeat / 2:g}s": sum(x > heartbeat / 2 for x in v)} for d, v in waits.items()
    }
    med = {d: median([r["makespan_s"] for r in v]) for d, v in results.items()}
    setting = "Airflow's default" if heartbeat == AIRFLOW_HEARTBEAT else "diagnostic"
    fig.rows.append(
        ratio_row("P5", f"makespan of {tasks} mapped tasks, LocalExecutor (parallelism {parallelism}), "
                  f"Airflow DB {db}, heartbeat {heartbeat:g} s ({setting})",
                  med["p5_dh"], "s", "PythonOperator", med["p5_python"],
                  TARGET if heartbeat == AIRFLOW_HEARTBEAT else None)
    )  # fmt: skip
    fig.rows.append(
        ratio_row("P5", f"median mapped task duration, heartbeat {heartbeat:g} s",
                  median([r["task_duration_median_s"] for r in results["p5_dh"]]),
                  "s", "PythonOperator", median([r["task_duration_median_s"] for r in results["p5_python"]]), None)
    )  # fmt: skip
    cpu = {d: median([sum(r["cpu_seconds"].values()) for r in v]) for d, v in results.items()}
    fig.rows.append(
        ratio_row("P5", f"CPU seconds of a DAG run, all Airflow processes and tasks, heartbeat {heartbeat:g} s",
                  cpu["p5_dh"], "s", "PythonOperator", cpu["p5_python"], None)
    )  # fmt: skip
    fig.details[f"heartbeat_{heartbeat:g}s"] = details
    details.update(
        {
            "tasks": tasks,
            "repeats": reps,
            "airflow_database": db,
            "parallelism": parallelism,
            "min_heartbeat_interval_s": heartbeat,
            "runs": results,
            "makespan_seconds": {d: summary([r["makespan_s"] for r in v]) for d, v in results.items()},
            # where the machine's CPU went during a DAG run, per server's process tree (median of the runs)
            "cpu_seconds_per_run": {
                d: {k: median([r["cpu_seconds"].get(k, 0.0) for r in v]) for k in v[0]["cpu_seconds"]}
                for d, v in results.items()
                if v
            },
        }
    )
