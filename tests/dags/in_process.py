"""Test-only DAGs for runs inside the Airflow task's interpreter (the in-process launcher)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

# Two functions whose sources are both ``main.py`` with a different ``answer``: a module kept
# from the first run would give the second task the first one's value.
FIRST = """
import os
import subprocess
import sys

def answer():
    return 1

def h():
    print("printed by the handler", flush=True)
    subprocess.run([sys.executable, "-c", "print('printed by a child process')"], check=True)
    return answer(), os.environ.get("DIGITALHUB_DATA_URL", "")
"""
SECOND = "def answer():\n    return 2\n\ndef h():\n    return answer()\n"
SLOW = "import time\n\ndef h():\n    print('sleeping', flush=True)\n    time.sleep(60)\n    print('woke up')\n"
EXITS = "import sys\n\ndef h():\n    sys.exit(3)\n"
COMMON = {"project": "demo", "handler": "h", "python_version": "PYTHON3_11"}

dags = {}
with DAG(dag_id="in_process_two_sources", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    first = PythonRuntimeOperator(task_id="first", code=FIRST, outputs=["answer", "data_url"], **COMMON)
    second = PythonRuntimeOperator(task_id="second", code=SECOND, **COMMON)
    first >> second
dags["two_sources"] = dag

with DAG(dag_id="in_process_timeout", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(task_id="slow", code=SLOW, execution_timeout=timedelta(seconds=3), **COMMON)
dags["timeout"] = dag

with DAG(dag_id="in_process_sys_exit", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(task_id="exits", code=EXITS, **COMMON)
dags["sys_exit"] = dag

with DAG(dag_id="in_process_refused", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(task_id="needs_env", code=SECOND, requirements=["six"], in_process=True, **COMMON)
dags["refused"] = dag
