"""Test-only DAGs: each task gets a bad input and must fail with a clear message before any process starts."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = "def h(di=None):\n    return 1\n"
COMMON = {"project": "demo", "code": CODE, "handler": "h", "python_version": "PYTHON3_11"}

CASES = {
    "unknown_connection": dict(COMMON, digitalhub_conn_id="no_such_connection"),
    "missing_function": {"project": "demo", "function": "ghost"},
    "template_bad_key": dict(COMMON, inputs={"di": "{{ params.key }}"}),
    "invalid_resources": dict(COMMON, resources="lots"),
    "invalid_backoff": dict(COMMON, node_selector=[{"key": "zone"}], tolerations="none"),
    "missing_input": dict(COMMON, inputs={"di": "store://demo/dataitem/table/nothing-here"}),
}

dags = {}
for case, kwargs in CASES.items():
    with DAG(
        dag_id=f"bad_{case}", schedule=None, start_date=datetime(2026, 1, 1), params={"key": "store://demo/oops"}
    ) as dag:
        PythonRuntimeOperator(task_id="task", **kwargs)
    dags[case] = dag
