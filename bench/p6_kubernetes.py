"""P6: one python job on the Kubernetes launcher, against the stand-in API server.

The stand-in (``tests/k8s_standin``: the pod API on 127.0.0.1, each pod's command a local process)
runs in a process of its own (own process group, stopped in ``finally``), next to moto's S3 server
(the data store pods reach). Each sample is the DAG file's parse plus the task in a fresh
interpreter, as a worker pays them (see :mod:`bench.airflow_task`). Interleaved, round by round:

* ``dh``: PythonRuntimeOperator with ``local_execution=False`` on connection ``dh_k8s``
  (KubernetesPodOperator runs ``python -m digitalhub_provider.runtimes <RunSpec URL>``);
* ``kpo``: a bare KubernetesPodOperator running the same handler with ``python -c`` against
  the same server, with the same pod-operator settings (polling intervals, logs, delete when done).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.airflow_task import measure, write_variants
from bench.common import (
    PYTHON,
    REPO,
    Config,
    FigureResult,
    child_env,
    migrated_airflow,
    ratio_row,
    s3_client,
    worker_main,
)

MODULE = "bench.p6_kubernetes"
TARGET = 1.1
S3_KEY, S3_SECRET = "bench-key-id", "bench-secret"
# Short polls: with its defaults KubernetesPodOperator checks a pod's start every 5 s and its state every 2 s, and
# both variants are mostly waiting; a 1-s start check quantises the figure (docs/benchmarks.md, the run controller).
FAST = {"poll_interval": 0.3, "startup_check_interval_seconds": 0.3, "base_container_status_polling_interval": 0.3}
IMAGE = "registry.local/dh-python:{python}"
SCRIPT = "def handler(i):\n    return i + 1\n\n\nprint(handler(41))\n"

DAG_DH = """from datetime import datetime

from airflow.sdk import DAG

from digitalhub_provider.operators import PythonRuntimeOperator

CODE = "def handler(i):\\n    return i + 1\\n"

with DAG(dag_id="p6_dh", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    PythonRuntimeOperator(task_id="t", project="bench", function="trivial", code=CODE, handler="handler",
                          parameters={"i": 41}, digitalhub_conn_id="dh_k8s", local_execution=False)
"""
DAG_KPO = """from datetime import datetime

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG

with DAG(dag_id="p6_kpo", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    KubernetesPodOperator(
        task_id="t", name="bench-kpo", namespace="dh", image=IMAGE, cmds=["python", "-c"], arguments=[SCRIPT],
        config_file=KUBECONFIG, get_logs=True, reattach_on_restart=True, on_finish_action="delete_pod",
        do_xcom_push=False, log_events_on_failure=True, random_name_suffix=True, **FAST,
    )
"""


# -- the stand-in in a process of its own -------------------------------------------------------------------
def serve_standin(info: str) -> dict[str, Any]:
    """Serve the stand-in until SIGTERM; its URL and kubeconfig go to ``info`` (JSON) once it listens."""
    from tests.k8s_standin.server import StandinK8s

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with StandinK8s() as k8s:
        k8s.add_secret("dh", "dh-credentials", {"DIGITALHUB_S3_ACCESS_KEY_ID": S3_KEY,
                                                "DIGITALHUB_S3_SECRET_ACCESS_KEY": S3_SECRET})  # fmt: skip
        path = Path(info)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": k8s.url, "kubeconfig": k8s.kubeconfig_path(path.parent, "dh")}))
        tmp.replace(path)
        while not stop.wait(0.2):
            pass
        created = k8s.created_count
    return {"pods_created": created}


def _start_standin(base: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    info = base / "standin.json"
    with open(base / "standin.log", "ab") as fh:
        proc = subprocess.Popen(
            [PYTHON, "-m", MODULE, "--worker", "serve_standin", json.dumps({"info": str(info)})],
            cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while not info.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            from tests.servers import stop_group

            stop_group(proc)
            raise RuntimeError(f"the stand-in did not start:\n{(base / 'standin.log').read_text()[-3000:]}")
        time.sleep(0.1)
    return proc, json.loads(info.read_text())


# -- the figure ------------------------------------------------------------------------------------------------------
def run(cfg: Config, fig: FigureResult) -> None:
    from tests.servers import moto_server, stop_group

    base = cfg.figure_dir("P6")
    reps = cfg.reps(full=5, quick=2)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    image = IMAGE.format(python=python)
    with moto_server(base) as endpoint:
        s3_client(endpoint).create_bucket(Bucket="bench-k8s")
        env = child_env(base, cfg.envs_dir)
        proc, standin = _start_standin(base, env)
        try:
            extra = {
                "launcher": "kubernetes", "namespace": "dh", "kube_config_path": standin["kubeconfig"],
                "credentials_secret": "dh-credentials", "data_url": "s3://bench-k8s/data", "s3_endpoint_url": endpoint,
                "metadata_url": f"sqlite:///{Path(env['DIGITALHUB_HOME']) / 'metadata.db'}",
                "default_image": IMAGE, "pod_operator_kwargs": FAST,
            }  # fmt: skip
            conn = {"conn_type": "digitalhub", "login": S3_KEY, "password": S3_SECRET, "extra": extra}
            env["AIRFLOW_CONN_DH_K8S"] = json.dumps(conn)
            header = (
                f"IMAGE = {image!r}\nSCRIPT = {SCRIPT!r}\nKUBECONFIG = {standin['kubeconfig']!r}\nFAST = {FAST!r}\n"
            )
            files = write_variants(base, {"dh": DAG_DH, "kpo": DAG_KPO.replace("with DAG(", header + "\nwith DAG(", 1)})
            migrated_airflow(cfg, base, env)
            s = measure(cfg, "P6", env, files, ("dh", "kpo"), reps, base / "workers.log")
        finally:
            stop_group(proc)
    fig.rows += [
        ratio_row("P6", "one python job in a pod (stand-in API server): parse + task", s.median_total("dh"), "s",
                  "bare KubernetesPodOperator", s.median_total("kpo"), TARGET),
        ratio_row("P6", "one python job in a pod: task duration only", s.median_task("dh"), "s",
                  "bare KubernetesPodOperator", s.median_task("kpo"), None),
    ]  # fmt: skip
    fig.details.update({"repeats": reps, "pod_operator_kwargs": FAST, **s.details()})


if __name__ == "__main__":
    worker_main({"serve_standin": serve_standin})
