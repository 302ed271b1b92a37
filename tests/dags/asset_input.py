"""Test-only DAG: an input given as an Asset (the latest version of the world-cities dataitem), which is
also an inlet of the task. Airflow's safe mode parses files that mention "airflow" and "dag": this
docstring does."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Asset

from digitalhub_provider.operators import PythonRuntimeOperator

with DAG(dag_id="asset_input", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(
        task_id="count", project="demo", function="count", code="def count(di):\n    return len(di.as_df())\n",
        handler="count", inputs={"di": Asset("digitalhub://demo/dataitem/world-cities")},
        inlets=[Asset("s3://elsewhere/x")],
    )  # fmt: skip
