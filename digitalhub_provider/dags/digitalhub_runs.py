"""``digitalhub_runs``: the DAG that executes runs submitted through the REST API.

DigitalHub Core's SDK creates a run with ``local_execution=False`` and expects the
platform to execute it; the REST API triggers this DAG with ``{"run_key": ...}``
as its conf. No schedule; as many DAG runs at once as Airflow's defaults allow.
To deploy it, make it part of a DAG bundle, e.g. a file in the DAGs folder holding::

    # the Airflow DAG that executes runs submitted through the REST API
    from digitalhub_provider.dags.digitalhub_runs import dag  # noqa: F401

(Airflow's safe mode parses only files that mention both "airflow" and "dag": the comment does.)
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from digitalhub_provider.operators.submitted import SubmittedRunOperator

DAG_ID = "digitalhub_runs"
TASK_ID = "run"

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    params={"run_key": Param("", type="string", description="the run's key: store://project/run/kind/id")},
    tags=["digitalhub"],
    doc_md=__doc__,
) as dag:
    SubmittedRunOperator(task_id=TASK_ID, run_key="{{ params.run_key }}")
