"""``digitalhub_maintenance``: reconcile the runs nobody follows any more, every 10 minutes.

A run whose caller was killed (a worker lost without retries, a script stopped with SIGKILL) would
stay RUNNING: this DAG finishes each such run from its RunResult, or ends it ERROR "runner lost"
when its runner is gone (see ``RunController.reconcile``); ``digitalhub runs reconcile`` does the
same from a shell. The stores are those of the ``digitalhub_default`` connection (the DAG's
``conn_id`` param picks another). To deploy it, make it part of a DAG bundle, e.g. a file in the
DAGs folder holding::

    # the Airflow DAG that reconciles DigitalHub runs
    from digitalhub_provider.dags.digitalhub_maintenance import dag  # noqa: F401

Besides the processes of the host it runs on and the RunResults on the data store, this DAG asks
Airflow about the task instance that started each run (its ``airflow.*`` labels): a task instance that
is no longer running (failed, up for retry, gone) has no follower left, so a run that ran in that
task's process, or that never got to run, ends ERROR "runner lost: ...". A local runner on another
host is left until its RunResult appears.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

DAG_ID = "digitalhub_maintenance"

# Task instance states in which the try that started a run may still be following it.
LIVE_STATES = frozenset({"running", "queued", "scheduled", "restarting", "deferred", "up_for_reschedule"})


def task_instance_gone(run: Any) -> str | None:
    """Why the Airflow task instance that started ``run`` follows it no more (Airflow says it is not
    running), or None (running, or the run was not started by an Airflow task)."""
    labels = dict(lab.split("=", 1) for lab in run.metadata.labels or [] if lab.startswith("airflow.") and "=" in lab)
    dag_id, run_id, task_id = (labels.get(f"airflow.{k}") for k in ("dag_id", "run_id", "task_id"))
    if not (dag_id and run_id and task_id):
        return None
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    map_index = int(labels.get("airflow.map_index") or -1)
    states = RuntimeTaskInstance.get_task_states(
        dag_id=dag_id, task_ids=[task_id], run_ids=[run_id], map_index=map_index if map_index >= 0 else None
    )
    state = (states.get(run_id) or {}).get(task_id if map_index < 0 else f"{task_id}_{map_index}")
    if state in LIVE_STATES:
        return None
    where = f"{dag_id}/{run_id}/{task_id}" + (f"[{map_index}]" if map_index >= 0 else "")
    return f"its Airflow task instance {where} is {state or 'gone'}"


with DAG(
    dag_id=DAG_ID,
    schedule=timedelta(minutes=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={"conn_id": Param("digitalhub_default", type="string", description="the DigitalHub connection")},
    tags=["digitalhub"],
    doc_md=__doc__,
) as dag:

    @task(task_id="reconcile_runs")
    def reconcile_runs(params: dict[str, str] | None = None) -> dict[str, int]:
        """Finish the unfinished runs nobody follows; returns how many were seen and how they ended."""
        from digitalhub_provider.cli import reconcile

        return reconcile(
            conn_id=(params or {}).get("conn_id") or "digitalhub_default", follower_gone=task_instance_gone
        )

    reconcile_runs()
