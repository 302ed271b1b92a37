"""Test-only DAG: python jobs on the Kubernetes launcher (connection dh_k8s: the stand-in API server + moto S3)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = """
import pandas as pd
from digitalhub_provider import handler

@handler(outputs=["table", "total"])
def make(n: int = 3):
    print(f"making {n} rows in a pod", flush=True)
    df = pd.DataFrame({"i": list(range(n))})
    return df, int(df["i"].sum())
"""

with DAG(dag_id="k8s_job", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(
        task_id="sync_pod", project="demo", function="make", code=CODE, handler="make", python_version="PYTHON3_11",
        parameters={"n": 4}, digitalhub_conn_id="dh_k8s", local_execution=False,
        resources={"cpu": "500m", "mem": {"requests": "256Mi", "limits": "1Gi"}},
    )  # fmt: skip
    PythonRuntimeOperator(
        task_id="deferred_pod", project="demo", function="make", code=CODE, handler="make",
        python_version="PYTHON3_11", parameters={"n": 5}, digitalhub_conn_id="dh_k8s", deferrable=True,
    )  # fmt: skip
