"""Test-only DAG: a run on a connection whose S3 secret must never show in logs, XCom or templates."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = """
import os
import pandas as pd
from digitalhub_provider import handler

@handler(outputs=["table", "env_names"])
def h():
    print("environment has", sorted(k for k in os.environ if k.startswith("DIGITALHUB_")))
    return pd.DataFrame({"a": [1, 2, 3]}), sorted(k for k in os.environ if k.startswith("DIGITALHUB_"))
"""

with DAG(dag_id="secrets_on_s3", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(
        task_id="task", project="demo", code=CODE, handler="h", python_version="PYTHON3_11",
        digitalhub_conn_id="dh_s3", parameters={},
    )  # fmt: skip
