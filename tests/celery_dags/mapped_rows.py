"""Test-only DAG for the Celery deployment: mapped DigitalHub runs spread over the workers.
Airflow's safe mode parses files that mention "airflow" and "dag": this docstring does."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = "import os\n\ndef square(n):\n    return n * n, os.environ.get('TMPDIR', '')\n"

with DAG(dag_id="mapped_rows", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator.partial(
        task_id="square", project="demo", code=CODE, handler="square", outputs=["square", "tmpdir"]
    ).expand(parameters=[{"n": n} for n in range(8)])
