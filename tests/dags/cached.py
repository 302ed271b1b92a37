"""Test-only DAG: the same run twice, cached: the second task reuses the first one's outcome. Airflow's
safe mode parses files that mention "airflow" and "dag": this docstring does."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = """
import pandas as pd


def square(n):
    return pd.DataFrame({"n": [n], "square": [n * n]}), n * n
"""

with DAG(dag_id="cached", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    first = PythonRuntimeOperator(
        task_id="first", project="demo", function="square", code=CODE, handler="square",
        parameters={"n": 7}, outputs=["table", "value"], cache=True,
    )  # fmt: skip
    second = PythonRuntimeOperator(
        task_id="second", project="demo", function="square", code=CODE, handler="square",
        parameters={"n": 7}, outputs=["table", "value"], cache=True,
    )  # fmt: skip
    first >> second
