"""Test-only DAG: one PythonRuntimeOperator mapped over its parameters (``.expand``), one templated."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = 'def h(who):\n    return f"hello {who}"\n'

with DAG(dag_id="mapped_runs", schedule=None, start_date=datetime(2026, 1, 1), params={"who": "Ada"}) as dag:
    PythonRuntimeOperator.partial(task_id="t", project="demo", function="mapped-hello", code=CODE, handler="h").expand(
        parameters=[{"who": "{{ params.who }}"}, {"who": "Bob"}, {"who": "Eve"}]
    )
