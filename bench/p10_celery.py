"""P10: 200 mapped tasks on Airflow's CeleryExecutor, two workers, against the same DAG of PythonOperators.

The deployment of ``tests/test_celery.py``: Redis (Debian's ``redis-server``) as the broker, PostgreSQL
(Debian's server) for Airflow's database, Celery's results and the metadata store, moto's S3 server as the
data store, the real scheduler, api-server and dag-processor, and ``airflow celery worker`` processes (each
its own process group, temporary folder and 2 slots). Two DAGs of 200 mapped tasks of a trivial handler:
``PythonRuntimeOperator`` (each task a tracked run, in the task's interpreter) and ``PythonOperator``
(the anchor), triggered alternately through the REST API; the makespan is the DAG run's start to end as
Airflow records it, the CPU the seconds every process of the deployment used during the DAG run (the
workers' trees hold the tasks). The whole is measured with two workers, then with one (the same DAGs
on a deployment with a single worker): what the second worker brings.
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from typing import Any

from bench.common import Config, FigureResult, median, ratio_row, summary
from bench.p5_mapped import DAGS as P5_DAGS
from bench.p5_mapped import _cpu_seconds, _seconds

DAGS = {name.replace("p5_", "p10_"): text.replace("p5_", "p10_") for name, text in P5_DAGS.items()}


def _one_run(dep: Any, dag_id: str, tasks: int) -> dict[str, Any]:
    cpu_before = _cpu_seconds(dep)
    run_id = dep.trigger(dag_id, {})
    state = dep.wait_run(dag_id, run_id, timeout=max(900.0, tasks * 10.0))
    if state != "success":
        raise RuntimeError(f"{dag_id} {run_id} ended {state}: {dep.task_states(dag_id, run_id)}\n{dep.diagnostics()}")
    dr = dep.api("GET", f"dags/{dag_id}/dagRuns/{run_id}").json()
    time.sleep(2)  # the last task processes end
    cpu_after = _cpu_seconds(dep)
    return {
        "makespan_s": _seconds(dr.get("start_date"), dr.get("end_date")),
        "cpu_seconds": round(sum(cpu_after.values()) - sum(cpu_before.get(k, 0.0) for k in cpu_after), 2),
    }


def _deployment(cfg: Config, workers: int, tasks: int, reps: int) -> dict[str, list[dict[str, Any]]]:
    import boto3

    from tests.airflow_servers import airflow_deployment, celery_env
    from tests.servers import create_database, moto_server, postgres_server, redis_server

    base = cfg.figure_dir("P10") / f"{workers}-workers"
    dags = base / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for dag_id, text in DAGS.items():
        (dags / f"{dag_id}.py").write_text(text.format(n=tasks))
    results: dict[str, list[dict[str, Any]]] = {d: [] for d in DAGS}
    with ExitStack() as stack:
        for name in ("pg", "moto", "redis"):
            (base / name).mkdir(exist_ok=True)
        pg = stack.enter_context(postgres_server(base / "pg"))
        s3 = stack.enter_context(moto_server(base / "moto"))
        broker = stack.enter_context(redis_server(base / "redis"))
        airflow_db = create_database(pg, f"airflow_{uuid.uuid4().hex[:8]}")
        bucket = f"p10-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=s3, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket=bucket)  # fmt: skip
        extra = {
            **celery_env(airflow_db, broker, dags),
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "DIGITALHUB_METADATA_URL": create_database(pg, f"dh_{uuid.uuid4().hex[:8]}"),
            "DIGITALHUB_DATA_URL": f"s3://{bucket}/data",
            "DIGITALHUB_S3_ENDPOINT_URL": s3,
            "DIGITALHUB_S3_ACCESS_KEY_ID": "testing",
            "DIGITALHUB_S3_SECRET_ACCESS_KEY": "testing",
            "DIGITALHUB_ENVS_DIR": str(cfg.envs_dir),
        }
        dep = stack.enter_context(airflow_deployment(base / "airflow", extra, celery_workers=workers))
        for dag_id in DAGS:
            dep.wait_dag(dag_id, timeout=300)
        for dag_id in DAGS:  # warm-up, untimed
            _one_run(dep, dag_id, tasks)
        for rep in range(reps):
            for dag_id in DAGS:
                res = _one_run(dep, dag_id, tasks)
                results[dag_id].append(res)
                cfg.log(f"P10 {workers} worker(s) {rep + 1}/{reps} {dag_id}: makespan {res['makespan_s']:.1f}s")
    return results


def run(cfg: Config, fig: FigureResult) -> None:
    tasks = cfg.size(200, 20)
    reps = cfg.reps(full=3, quick=1)
    by_workers = {workers: _deployment(cfg, workers, tasks, reps) for workers in (2, 1)}
    med = {(w, d): median([r["makespan_s"] for r in runs]) for w, res in by_workers.items() for d, runs in res.items()}
    cpu = {(w, d): median([r["cpu_seconds"] for r in runs]) for w, res in by_workers.items() for d, runs in res.items()}
    fig.rows += [
        ratio_row("P10", f"makespan of {tasks} mapped tasks, CeleryExecutor, 2 workers x 2 slots",
                  med[(2, "p10_dh")], "s", "PythonOperator", med[(2, "p10_python")], None),
        ratio_row("P10", "CPU seconds of a DAG run, every process of the deployment, 2 workers",
                  cpu[(2, "p10_dh")], "s", "PythonOperator", cpu[(2, "p10_python")], None),
        ratio_row("P10", "makespan with 1 worker against 2 (what the second worker brings)",
                  med[(1, "p10_dh")], "s", "2 workers", med[(2, "p10_dh")], None),
        ratio_row("P10", "the same for PythonOperator, 1 worker against 2",
                  med[(1, "p10_python")], "s", "2 workers", med[(2, "p10_python")], None),
    ]  # fmt: skip
    fig.details.update(
        {
            "tasks": tasks,
            "repeats": reps,
            "runs": {f"{w}-workers": res for w, res in by_workers.items()},
            "makespan_seconds": {
                f"{w}-workers/{d}": summary([r["makespan_s"] for r in runs])
                for w, res in by_workers.items()
                for d, runs in res.items()
            },
        }
    )
