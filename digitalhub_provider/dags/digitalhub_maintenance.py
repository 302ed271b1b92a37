"""``digitalhub_maintenance``: reconcile the runs nobody follows any more, every 10 minutes.

A run whose caller was killed (a worker lost without retries, a script stopped with SIGKILL) would
stay RUNNING: this DAG finishes each such run from its RunResult, or ends it ERROR "runner lost"
when its runner is gone (see ``RunController.reconcile``); ``digitalhub runs reconcile`` does the
same from a shell. The stores are those of the ``digitalhub_default`` connection (the DAG's
``conn_id`` param picks another). To deploy it, make it part of a DAG bundle, e.g. a file in the
DAGs folder holding::

    # the Airflow DAG that reconciles DigitalHub runs
    from digitalhub_provider.dags.digitalhub_maintenance import dag  # noqa: F401

A run is only decided where its runner's liveness can be read: the reconciler checks local
processes of the host it runs on, so on several workers each needs its own look (or the run's
RunResult, which any worker can read from the shared data store).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

DAG_ID = "digitalhub_maintenance"

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

        return reconcile(conn_id=(params or {}).get("conn_id") or "digitalhub_default")

    reconcile_runs()
