"""A task that fails twice, then succeeds: DigitalHub's backoff_limit as Airflow retries.

Each try is its own DigitalHub run under the same task, labelled with its try number.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

with DAG(
    dag_id="retry_with_backoff",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    render_template_as_native_obj=True,
    tags=["digitalhub", "example"],
) as dag:
    PythonRuntimeOperator(
        task_id="flaky",
        project="demo",
        function="flaky",
        code_src="src/flaky.py",
        handler="flaky",
        python_version="PYTHON3_11",
        parameters={"try_number": "{{ ti.try_number }}"},
        backoff_limit=2,  # two retries, exponential backoff from retry_delay
        retry_delay=timedelta(seconds=1),
    )
