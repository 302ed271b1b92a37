"""Test-only DAG for the Celery deployment: the run of ``celery_failover`` without retries, so that its
worker's death fails the task and leaves the run to the maintenance DAG. Airflow's safe mode parses files
that mention "airflow" and "dag": this docstring does."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = """
import time
from pathlib import Path

def hold(gate):
    while not Path(gate).exists():
        time.sleep(0.1)
    return "through"
"""

with DAG(dag_id="celery_no_retry", schedule=None, start_date=datetime(2026, 1, 1), params={"gate": ""}) as dag:
    PythonRuntimeOperator(
        task_id="hold", project="demo", code=CODE, handler="hold", parameters={"gate": "{{ params.gate }}"},
        outputs=["answer"], in_process=False, retries=0,
    )  # fmt: skip
