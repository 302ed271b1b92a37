"""Test-only DAG: a result larger than the run's record keeps (stored on the data store, referenced)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = 'def big(n):\n    return "x" * n, n\n'

with DAG(dag_id="large_result", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(
        task_id="t", project="demo", code=CODE, handler="big", parameters={"n": 200_000}, outputs=["text", "size"]
    )
