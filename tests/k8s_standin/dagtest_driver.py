"""Run ``KubernetesPodOperator`` tasks with ``dag.test()`` against a stand-in API server.

Usage: ``python dagtest_driver.py HOME_DIR SPEC_JSON``, in a fresh interpreter, so that Airflow's
global state is this process's own: before importing Airflow it points ``AIRFLOW_HOME``, the
dags folder and a SQLite metadata database at ``HOME_DIR``, creates the schema (``initdb``),
writes a DAG file (``dag.test()`` in Airflow 3.3 only runs DAGs serialized from a bundle) and
runs one DAG run, in which deferred tasks' triggers run inline.

``SPEC_JSON`` is ``{"kubeconfig": path, "tasks": {task_id: KubernetesPodOperator kwargs}}``.
The outcome is printed as one ``DAGTEST_RESULT {...}`` JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

DAG_ID = "k8s_standin_dagtest"
SPEC_ENV = "K8S_STANDIN_DAGTEST_SPEC"
DAG_FILE = f'''
import json, os
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG

spec = json.loads(os.environ["{SPEC_ENV}"])
with DAG(dag_id="{DAG_ID}", schedule=None, catchup=False) as dag:
    for task_id, kwargs in spec["tasks"].items():
        KubernetesPodOperator(
            task_id=task_id, config_file=spec["kubeconfig"], kubernetes_conn_id=None, **kwargs
        )
'''


def main(home: Path, spec_json: str) -> int:
    t0 = time.monotonic()
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / f"{DAG_ID}.py").write_text(DAG_FILE)
    # Whatever Airflow settings the calling process has (e.g. a bundle list) must not leak in.
    for name in [n for n in os.environ if n.startswith("AIRFLOW")]:
        del os.environ[name]
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            SPEC_ENV: spec_json,
        }
    )
    from airflow.utils.db import initdb

    initdb()
    t_db = time.monotonic() - t0

    import runpy

    dag = runpy.run_path(str(dags / f"{DAG_ID}.py"))["dag"]
    dr = dag.test()
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    result = {
        "dag_run": dr.state,
        "tasks": states,
        "db_init_s": round(t_db, 2),
        "total_s": round(time.monotonic() - t0, 2),
    }
    print("DAGTEST_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
