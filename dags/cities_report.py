"""Data-aware: a report on every new version of the ``world-cities`` dataitem, whoever made it.

Scheduled on the dataitem's Asset (``digitalhub://demo/dataitem/world-cities``): each run of the
``world_cities`` DAG (or any task whose run outputs a new version of it) triggers this DAG, and
``report`` reads the exact version that triggered it (``triggering_key``).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Asset

from digitalhub_provider.assets import asset_uri, triggering_key
from digitalhub_provider.operators import PythonRuntimeOperator

WORLD_CITIES = asset_uri("demo", "dataitem", "world-cities")

with DAG(
    dag_id="cities_report",
    schedule=[Asset(WORLD_CITIES)],
    start_date=datetime(2026, 1, 1),
    tags=["digitalhub", "example"],
) as dag:
    PythonRuntimeOperator(
        task_id="report",
        project="demo",
        function="report",
        code_src="src/cities.py",
        handler="report",
        python_version="PYTHON3_11",
        inputs={"di": triggering_key(WORLD_CITIES)},
    )
