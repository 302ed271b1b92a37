"""Run ``KubernetesPodOperator`` tasks with ``dag.test()`` against a stand-in API server.

Meant to run in a fresh interpreter (``python dagtest_driver.py SPEC_JSON``) so that Airflow's
global configuration (``AIRFLOW_HOME``, metadata database) is this process's own: the caller
sets ``AIRFLOW_HOME`` and ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` to a temporary directory in
the environment. ``SPEC_JSON`` is ``{"kubeconfig": path, "tasks": {task_id: kpo_kwargs}}``;
the tasks run in one DAG run (``dag.test()`` runs deferred tasks' triggers inline). The final
state of each task instance is printed as a ``DAGTEST_RESULT {...}`` JSON line.
"""

from __future__ import annotations

import json
import sys
import time


def main(spec: dict[str, object]) -> int:
    t0 = time.monotonic()
    from airflow.utils.db import initdb

    initdb()
    t_db = time.monotonic() - t0

    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import DAG

    tasks = spec["tasks"]
    assert isinstance(tasks, dict)
    with DAG(dag_id="k8s_standin_dagtest", schedule=None, catchup=False) as dag:
        for task_id, kwargs in tasks.items():
            KubernetesPodOperator(task_id=task_id, config_file=spec["kubeconfig"], kubernetes_conn_id=None,
                                  **kwargs)
    dr = dag.test()
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    result = {"dag_run": dr.state, "tasks": states, "db_init_s": round(t_db, 2),
              "total_s": round(time.monotonic() - t0, 2)}
    print("DAGTEST_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
