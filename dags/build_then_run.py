"""Build once, then run on what was built.

``build`` makes the function's environment: its requirements, then each of
``instructions`` in order (here one pins ``six`` below the requirement's
version). The build records that environment on a new version of the function
(``spec.image``: a virtualenv on the local launcher, an image on Kubernetes), and
its XCom ``image`` names it. ``job`` runs the same function, by name: its latest
version, the built one, so it reports the pinned ``six``. A later DAG run builds
nothing new: the environment is cached and the function already runs on it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

FUNCTION = {
    "project": "demo",
    "function": "six-versions",
    "code_src": "src/versions.py",
    "handler": "versions",
    "python_version": "PYTHON3_11",
    "requirements": ["six"],
}

with DAG(
    dag_id="build_then_run",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    tags=["digitalhub", "example"],
) as dag:
    build = PythonRuntimeOperator(
        task_id="build",
        action="build",
        instructions=["python -m pip install --no-deps --disable-pip-version-check -q six==1.16.0"],
        **FUNCTION,
    )
    job = PythonRuntimeOperator(task_id="job", **FUNCTION)
    build >> job
