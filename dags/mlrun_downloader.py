"""The seed's MLRun downloader, as three tasks.

``register`` registers a CSV (shipped in ``dags/data``, or any path or URL given as
the ``csv`` Param) as the ``employees-url`` dataitem; ``downloader`` runs the MLRun
handler ``downloader`` of ``src/mlrun_pipeline.py`` with MLRun, locally, in the mlrun
environment (Python 3.11 + mlrun): it reads that dataitem and logs the ``dataset``
dataset, which becomes a dataitem of kind table; ``summary`` reads it with the python
runtime. Only entity keys travel through XCom.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param

from digitalhub_provider.operators import MlrunJobOperator, PythonRuntimeOperator

CSV = Path(__file__).parent / "data" / "employees.csv"

REGISTER = '''
def register(project, csv: str):
    """The CSV as a read-only table dataitem (its data stays where it is)."""
    return project.new_dataitem(name="employees-url", kind="table", path=csv)
'''

SUMMARY = """
from digitalhub_provider import handler


@handler(outputs=["employees", "departments", "top_salary"])
def summary(di):
    df = di.as_df()
    return len(df), int(df["department_id"].nunique()), int(df["salary"].max())
"""

with DAG(
    dag_id="mlrun_downloader",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"csv": Param(str(CSV), type="string", description="CSV to read: a path or an http(s) URL")},
    tags=["digitalhub", "example", "mlrun"],
) as dag:
    register = PythonRuntimeOperator(
        task_id="register",
        project="demo",
        function="register-employees",
        code=REGISTER,
        handler="register",
        parameters={"csv": "{{ params.csv }}"},
        outputs=["url"],
    )
    downloader = MlrunJobOperator(
        task_id="downloader",
        project="demo",
        function="mlrun-downloader",
        source={"source": "src/mlrun_pipeline.py"},
        handler="downloader",
        image="mlrun/mlrun",
        inputs={"url": register.output["url"]},
        outputs={"dataset": "dataset"},
        values=["rows"],
    )
    summary = PythonRuntimeOperator(
        task_id="summary",
        project="demo",
        function="employees-summary",
        code=SUMMARY,
        handler="summary",
        inputs={"di": downloader.output["dataset"]},
    )
