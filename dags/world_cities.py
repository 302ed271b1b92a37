"""The seed's world-cities flow, every night at 03:00.

``download`` reads a CSV (shipped in ``dags/data``, or any URL given as the
``url`` Param), processes it with pandas and stores it as the ``world-cities``
dataitem; ``report`` reads that dataitem. The dataitem's key travels through
XCom (``download.output["world-cities"]``); the data stays on the data store.

``download`` declares the dataitem's Asset as its outlet: Airflow's asset graph shows it (and the
``cities_report`` DAG scheduled on it) before the first run, and each run's event carries the new
version's key.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Asset, Param

from digitalhub_provider.assets import asset_uri
from digitalhub_provider.operators import PythonRuntimeOperator

CSV = Path(__file__).parent / "data" / "world-cities.csv"

with DAG(
    dag_id="world_cities",
    schedule="0 3 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"url": Param(str(CSV), type="string", description="CSV to read: a path or an http(s) URL")},
    tags=["digitalhub", "example"],
) as dag:
    download = PythonRuntimeOperator(
        task_id="download",
        project="demo",
        function="download-and-process",
        code_src="src/cities.py",
        handler="download_and_process",
        python_version="PYTHON3_11",
        parameters={"url": "{{ params.url }}"},
        resources={"cpu": "1", "mem": "1Gi"},
        backoff_limit=3,
        outlets=[Asset(asset_uri("demo", "dataitem", "world-cities"))],
    )
    report = PythonRuntimeOperator(
        task_id="report",
        project="demo",
        function="report",
        code_src="src/cities.py",
        handler="report",
        python_version="PYTHON3_11",
        inputs={"di": download.output["world-cities"]},
    )
