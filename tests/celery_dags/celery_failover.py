"""Test-only DAG for the Celery deployment: a run that holds until the test opens its gate (a file),
so that the worker running it can be killed mid-task, and the retry, on the other worker, finishes.
Airflow's safe mode parses files that mention "airflow" and "dag": this docstring does."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = """
import os, time
from pathlib import Path

def hold(gate):
    print(f"holding in pid {os.getpid()}", flush=True)
    while not Path(gate).exists():
        time.sleep(0.1)
    return "through"
"""

with DAG(dag_id="celery_failover", schedule=None, start_date=datetime(2026, 1, 1), params={"gate": ""}) as dag:
    PythonRuntimeOperator(
        task_id="hold", project="demo", code=CODE, handler="hold", parameters={"gate": "{{ params.gate }}"},
        outputs=["answer"], in_process=False, retries=1, retry_delay=timedelta(seconds=1),
    )  # fmt: skip
