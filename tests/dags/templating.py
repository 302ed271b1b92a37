"""Test-only DAG: a function source with braces Jinja would take for its own, and templated parameters."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = 'def h(who):\n    return f"{{braces}} kept for {who}"  # {# not a Jinja comment #}\n'

with DAG(dag_id="source_not_templated", schedule=None, start_date=datetime(2026, 1, 1), params={"who": "Ada"}) as dag:
    PythonRuntimeOperator(task_id="t", project="demo", code=CODE, handler="h", parameters={"who": "{{ params.who }}"})
