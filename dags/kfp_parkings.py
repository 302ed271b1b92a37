"""The seed's KFP workflow (download -> extract parkings), run both ways.

``register_source`` registers the CSV (shipped in ``dags/data``, or any URL in
the ``csv`` Param) as the table dataitem the pipeline takes as ``url``.
``save_downloader`` and ``save_extract`` save the two platform functions the
pipeline's steps name (from the tasks' specs; a new version only when a spec
changes). Then the pipeline ``pipeline`` of
``src/parkings.py`` (written with the kfp runtime's ``pipeline_context``) runs:

- ``kfp_pipeline``: as one task, a workflow run of kind ``kfp`` executed with
  kfp.local (or on the KFP server named by the connection's ``kfp_host``); XCom
  holds ``download.dataset``, ``extract_parkings.parkings``, ...;
- ``parkings_native``: rendered as a TaskGroup, one Airflow task per step.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param

from digitalhub_provider.operators import KfpPipelineOperator, PythonRuntimeOperator
from digitalhub_provider.operators.kfp import pipeline_task_group

CSV = Path(__file__).parent / "data" / "parkings.csv"
PROJECT = "parkings"


class SaveFunction(PythonRuntimeOperator):
    """Save a function from the task's spec (a new version only when the spec changed); run nothing.

    What ``PythonRuntimeOperator(action="build")`` is meant to do (plus readying the function's
    environment); that action does not run through the operator in this version.
    """

    def execute(self, context: Any) -> str:
        from digitalhub_provider.hooks.digitalhub import DigitalHubHook

        self._dag_folder = os.path.dirname(context["dag"].fileloc)
        fn = self.resolve_function(DigitalHubHook(self.digitalhub_conn_id).get_context())
        self.log.info("function %s", fn.key)
        return fn.key


with DAG(
    dag_id="kfp_parkings",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"csv": Param(str(CSV), type="string", description="Parking occupancy CSV: a path or an http(s) URL")},
    tags=["digitalhub", "example", "kfp"],
) as dag:
    register_source = PythonRuntimeOperator(
        task_id="register_source",
        project=PROJECT,
        function="register-parkings-source",
        code_src="src/parkings.py",
        handler="register_source",
        parameters={"path": "{{ params.csv }}"},
    )
    builds = [
        SaveFunction(
            task_id=f"save_{short}", project=PROJECT, function=name, code_src="src/parkings.py", handler=handler
        )
        for short, name, handler in (
            ("downloader", "downloader-funct", "downloader"),
            ("extract", "extract-parkings", "extract_parkings"),
        )
    ]
    url = register_source.output["parkings-source"]

    kfp_pipeline = KfpPipelineOperator(
        task_id="kfp_pipeline",
        project=PROJECT,
        workflow="parkings-pipeline",
        code_src="src/parkings.py",
        handler="pipeline",
        inputs={"url": url},
    )
    native = pipeline_task_group("parkings_native", project=PROJECT, code_src="src/parkings.py", handler="pipeline",
                                 inputs={"url": url})  # fmt: skip

    builds >> kfp_pipeline
    builds >> native
