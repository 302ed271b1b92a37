"""A scoring function deployed as a service for the length of a DAG run: set up, called, torn down.

``serve`` returns once the service answers (its URL and run key in XCom); ``score_batch`` calls it with
a batch of rows; ``stop`` is the teardown, so the service is removed even when the call fails.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import DigitalHubStopRunOperator, PythonRuntimeOperator

with DAG(
    dag_id="serve_scoring",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    render_template_as_native_obj=True,  # the rows stay lists, the weights numbers
    tags=["digitalhub", "example"],
) as dag:
    serve = PythonRuntimeOperator(
        task_id="serve",
        project="demo",
        function="scorer",
        code_src="src/scoring.py",
        handler="score",
        init_function="load",
        python_version="PYTHON3_11",
        action="serve",
        parameters={"weights": [0.5, 2.0]},
    )
    score_batch = PythonRuntimeOperator(
        task_id="score_batch",
        project="demo",
        function="score-batch",
        code_src="src/scoring.py",
        handler="score_batch",
        python_version="PYTHON3_11",
        parameters={"url": "{{ ti.xcom_pull(task_ids='serve')['service']['url'] }}", "rows": [[1, 1], [2, 0.5]]},
    )
    stop = DigitalHubStopRunOperator(task_id="stop", run_key="{{ ti.xcom_pull(task_ids='serve')['run_key'] }}")
    serve >> score_batch >> stop.as_teardown(setups=serve)
