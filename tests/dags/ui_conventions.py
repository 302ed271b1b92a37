"""Test-only DAGs for what a user sees in Airflow's UI: the task log of a failing and of a succeeding run, and
the extra link of a task with and without a DigitalHub console."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

FAILS = """
def helper(rows):
    raise ValueError(f"the handler broke on purpose after {rows} rows")

def h(rows):
    print("starting", flush=True)
    helper(rows)
"""
SUCCEEDS = "def h(rows):\n    return rows * 2, 'done'\n"
COMMON = {"project": "demo", "handler": "h", "python_version": "PYTHON3_11", "parameters": {"rows": 3}}

dags = {}
for launcher, in_process in (("in_process", True), ("subprocess", False)):
    with DAG(dag_id=f"ui_failing_handler_{launcher}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        PythonRuntimeOperator(task_id="fails", function="fails", code=FAILS, in_process=in_process, **COMMON)
    dags[f"failing_{launcher}"] = dag

with DAG(dag_id="ui_succeeding_handler", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(task_id="succeeds", function="succeeds", code=SUCCEEDS, outputs=["doubled", "word"], **COMMON)
dags["succeeding"] = dag

with DAG(dag_id="ui_extra_links", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(task_id="default_conn", function="succeeds", code=SUCCEEDS, **COMMON)
    PythonRuntimeOperator(
        task_id="with_console", function="succeeds", code=SUCCEEDS, digitalhub_conn_id="dh_console", **COMMON
    )
    PythonRuntimeOperator(
        task_id="without_console", function="succeeds", code=SUCCEEDS, digitalhub_conn_id="dh_no_console", **COMMON
    )
    PythonRuntimeOperator.partial(
        task_id="mapped", function="succeeds", code=SUCCEEDS, digitalhub_conn_id="dh_no_console", project="demo",
        handler="h", python_version="PYTHON3_11",
    ).expand(parameters=[{"rows": 1}, {"rows": 2}])  # fmt: skip
dags["extra_links"] = dag
