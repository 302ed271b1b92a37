"""Triggered from the UI (or the REST API): the trigger form's Params feed the run's parameters.

``cache=True``: a trigger with the same Params as an earlier one reuses that run's results
(the new run is recorded COMPLETED, ``cached_from`` the earlier one) instead of executing.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from digitalhub_provider.operators import PythonRuntimeOperator

with DAG(
    dag_id="greet_with_params",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={
        "name": Param("world", type="string", description="Who to greet"),
        "times": Param(1, type="integer", minimum=1, maximum=10),
        "shout": Param(False, type="boolean"),
    },
    render_template_as_native_obj=True,  # so that times stays an int and shout a bool
    tags=["digitalhub", "example"],
) as dag:
    PythonRuntimeOperator(
        task_id="greet",
        project="demo",
        function="greet",
        code_src="src/greet.py",
        handler="greet",
        python_version="PYTHON3_11",
        parameters={"name": "{{ params.name }}", "times": "{{ params.times }}", "shout": "{{ params.shout }}"},
        cache=True,
    )
