"""Test-only DAG: the call between a service's setup and teardown fails; the teardown still stops it.
Airflow's safe mode parses files that mention "airflow" and "dag": this docstring does."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import DigitalHubStopRunOperator, PythonRuntimeOperator

CODE = """
def echo(context, event):
    return event.body


def call_and_fail(url):
    raise RuntimeError("the caller failed after the service started: " + url)
"""

with DAG(dag_id="serve_teardown", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    serve = PythonRuntimeOperator(
        task_id="serve", project="demo", function="echo", code=CODE, handler="echo", python_version="PYTHON3_11",
        action="serve", replicas=2,
    )  # fmt: skip
    call = PythonRuntimeOperator(
        task_id="call", project="demo", function="call-and-fail", code=CODE, handler="call_and_fail",
        python_version="PYTHON3_11", parameters={"url": "{{ ti.xcom_pull(task_ids='serve')['service']['url'] }}"},
    )  # fmt: skip
    stop = DigitalHubStopRunOperator(task_id="stop", run_key="{{ ti.xcom_pull(task_ids='serve')['run_key'] }}")
    serve >> call >> stop.as_teardown(setups=serve)
