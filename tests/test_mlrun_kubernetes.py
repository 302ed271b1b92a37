"""MlrunJobOperator on the Kubernetes launcher, under ``dag.test()``: the runner in a pod, from the mlrun
runtime image, runs a real MLRun handler.

No cluster: the stand-in API server (tests/k8s_standin) runs the pod's command as a local process, with
the container's ``python`` mapped to the mlrun environment's interpreter (Python 3.11 + mlrun 1.12.1, what
the mlrun runtime image holds; built once and cached in ``DIGITALHUB_TEST_ENVS_DIR``). Data goes to moto's
S3 server: the input CSV is uploaded there and the pod downloads it, as it would in a cluster.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import digitalhub_provider as dh
from tests.airflow_helpers import DAGS, load_dag, task_states, xcoms
from tests.k8s_standin.server import StandinK8s
from tests.test_kubernetes_launcher import S3_KEY, S3_SECRET, _s3_keys, k8s_conn  # noqa: F401 (k8s_conn: a fixture)
from tests.test_mlrun_runtime import BAD, TRAIN

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.timeout(420)]
EMPLOYEES = DAGS / "data" / "employees.csv"
IMAGE_PATTERN = "registry.example/digitalhub-runtime-{runtime}:py{python}"
MLRUN_IMAGE = "registry.example/digitalhub-runtime-mlrun:py3.11"
BUNDLE = "mlrun-k8s-tests"

DAG_FILE = """
from datetime import datetime

from airflow.sdk import DAG, Param

from digitalhub_provider.operators import MlrunJobOperator

with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         params={{"data": Param("", type="string")}}) as dag:
    MlrunJobOperator(
        task_id={task_id!r}, project="demo", function={function!r}, source={{"code": {code!r}}},
        handler={handler!r}, image="mlrun/mlrun", tag="1.12.1", inputs={inputs!r}, parameters={parameters!r},
        outputs={outputs!r}, values={values!r}, digitalhub_conn_id="dh_k8s", deferrable={deferrable!r},
    )
"""


@pytest.fixture
def mlrun_python(dh_home: Path) -> str:
    """The mlrun environment's interpreter (built once, cached; its runner copy refreshed if the source changed)."""
    from digitalhub_provider.launchers.envs import ensure_environment
    from digitalhub_provider.runtimes.registry import environment_of

    return ensure_environment(os.environ["DIGITALHUB_ENVS_DIR"], *environment_of("mlrun", {}))


@pytest.fixture
def k8s(mlrun_python: str) -> Iterator[StandinK8s]:
    """The stand-in API server whose containers' ``python`` is the mlrun environment's (the image's)."""
    with StandinK8s(executables={"python": mlrun_python, "python3": mlrun_python}) as server:
        yield server


@pytest.fixture
def mlrun_conn(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict:
    """``dh_k8s`` (the fixture k8s_conn of tests/test_kubernetes_launcher.py, on this module's ``k8s``),
    its default image a per-runtime pattern."""
    base = request.getfixturevalue("k8s_conn")
    conn = json.loads(json.dumps(base["conn"]))
    conn["extra"]["default_image"] = IMAGE_PATTERN
    monkeypatch.setenv("AIRFLOW_CONN_DH_K8S", json.dumps(conn))
    return {**base, "conn": conn}


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAG bundle of its own (``dag.test()`` runs only DAGs found in a bundle), listed first."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    from airflow.configuration import conf

    bundles = conf.getjson("dag_processor", "dag_bundle_config_list") or []
    assert isinstance(bundles, list)
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    mine = {"name": BUNDLE, "classpath": local, "kwargs": {"path": str(folder)}}
    config = [mine, *(b for b in bundles if b.get("name") != BUNDLE)]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(config))
    return folder


def _dag(bundle: Path, dag_id: str, **task: Any) -> Any:
    args = {"inputs": None, "parameters": None, "outputs": None, "values": None, "deferrable": False, **task}
    (bundle / f"{dag_id}.py").write_text(DAG_FILE.format(dag_id=dag_id, **args))
    return load_dag(f"{dag_id}.py", bundle)


def _employees() -> Any:
    """The CSV of dags/data, uploaded to the S3 data store (the pod cannot read the worker's disk)."""
    return dh.log_dataitem(project="demo", name="employees", kind="table", source=str(EMPLOYEES))


def _rels(entity: Any) -> list[dict[str, str]]:
    return [r.to_dict() for r in entity.metadata.relationships or []]


def _check_pod(pod: Any, run: Any, bucket: str) -> None:
    """The manifest the stand-in received: the mlrun runtime image, the runner, non-root, no credential."""
    import kubernetes_validate

    from digitalhub_provider.launchers.kubernetes import RUNNER_COMMAND

    manifest = pod.manifest
    kubernetes_validate.validate(manifest, "1.35.0", strict=True)
    spec = manifest["spec"]
    container = spec["containers"][0]
    assert container["image"] == MLRUN_IMAGE  # not the function's MLRun image (mlrun/mlrun:1.12.1)
    images = [c["image"] for c in spec["containers"] + spec.get("initContainers", [])]
    assert not [i for i in images if "mlrun/mlrun" in i]  # (the inline RunSpec does name it: MLRun's own field)
    assert container["command"] == RUNNER_COMMAND
    assert container["args"] == [f"s3://{bucket}/data/runs/{run.id}/runspec.json"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 1000
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    text = json.dumps(manifest)
    assert S3_KEY not in text and S3_SECRET not in text
    env = {e["name"]: e for e in container["env"]}
    for name in ("DIGITALHUB_S3_ACCESS_KEY_ID", "DIGITALHUB_S3_SECRET_ACCESS_KEY"):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "dh-credentials", "key": name}}}
    assert "DIGITALHUB_METADATA_PASSWORD" not in env  # the connection's metadata store has no password
    labels = manifest["metadata"]["labels"]
    assert labels["digitalhub.run"] == run.id and labels["digitalhub.project"] == "demo"


def test_mlrun_job_runs_in_a_pod_from_the_mlrun_runtime_image(
    k8s: StandinK8s, mlrun_conn: dict, bundle: Path, mlrun_python: str, s3_endpoint: str
) -> None:
    employees = _employees()
    assert employees.spec["path"].startswith(f"s3://{mlrun_conn['bucket']}/data/demo/dataitem/employees/")
    dag = _dag(
        bundle, "mlrun_k8s_train", task_id="train", function="train", code=TRAIN, handler="train",
        inputs={"data": "{{ params.data }}"}, parameters={"factor": 3, "label": "Payroll"},
        outputs={"model": "salary-model", "report": "salary-report"}, values=["total", "label"],
    )  # fmt: skip
    dr = dag.test(run_conf={"data": employees.key})
    assert str(dr.state) == "success", task_states(dr)

    # the run: COMPLETED, in a pod, with MLRun's artifacts as entities and its results
    x = xcoms("mlrun_k8s_train", dr.run_id)
    summary = x[("train", "return_value")]
    assert summary["state"] == "COMPLETED"
    run = dh.get_run(summary["run_key"])
    assert run.status.state == "COMPLETED" and run.kind == "mlrun+job:run", run.status.message
    assert run.spec["local_execution"] is False and run.status.get("launcher") == "kubernetes"
    assert set(summary["outputs"]) == {"scaled", "salary-model", "salary-report"}
    source = pd.read_csv(EMPLOYEES)
    total = 3 * int(source["SALARY"].sum())
    assert x[("train", "total")] == total and x[("train", "label")] == "Payroll"
    assert set(summary["results"]) == {"total", "label", "mlrun_run"} and ("train", "unwanted") not in x
    record = x[("train", "mlrun_run")]
    assert record["status"]["state"] == "completed" and record["spec"]["handler"] == "train"
    assert record["spec"]["parameters"] == {"factor": 3, "label": "Payroll"}
    assert record["status"]["results"]["unwanted"] == 1  # MLRun's record keeps them all

    data_root = f"s3://{mlrun_conn['bucket']}/data/demo/"
    scaled = dh.get_dataitem(x[("train", "scaled")])
    assert scaled.kind == "table" and scaled.spec["path"].startswith(data_root + "dataitem/scaled/")
    assert scaled.spec["path"].endswith("/data.parquet") and scaled.status.get("rows") == len(source) == 20
    assert scaled.as_df()["scaled"].tolist() == [s * 3 for s in source["SALARY"]]
    model = dh.get_model(x[("train", "salary-model")])
    assert model.kind == "model" and model.spec["path"].startswith(data_root + "model/salary-model/")
    assert model.spec["framework"] == "sklearn" and model.spec["metrics"] == {"mae": 0.5}
    assert Path(model.download()).read_bytes() == b"not really a model"
    report = dh.get_artifact(x[("train", "salary-report")])
    assert report.kind == "artifact" and report.spec["path"].startswith(data_root + "artifact/salary-report/")
    assert Path(report.download()).read_text() == "Payroll: 20 rows"
    for entity in (scaled, model, report):
        assert {"type": "produced_by", "dest": run.key} in _rels(entity)
    assert {"type": "consumes", "dest": employees.key} in _rels(run)
    fn = dh.get_function("train", project="demo")
    assert fn.spec["image"] == "mlrun/mlrun" and fn.spec["tag"] == "1.12.1"  # MLRun's own, kept on the function

    # the pod: one, deleted when done, from the mlrun runtime image; the runner ran MLRun in it
    assert k8s.created_count == 1 and not k8s.pods
    [pod] = k8s.history
    assert pod.phase == "Succeeded" and pod.exit_code == 0
    _check_pod(pod, run, mlrun_conn["bucket"])
    assert k8s.executables["python"] == mlrun_python  # the image's python (no mlrun in the worker's)
    logs = run.logs()  # the pod's log, stored with the run
    assert "MLRun artifact 'scaled' -> dataitem 'scaled' at s3://" in logs
    assert "MLRun artifact 'model' -> model 'salary-model' at s3://" in logs
    assert "/inputs/data/employees.csv" in json.dumps(record["spec"]["inputs"])  # downloaded from S3 in the pod
    keys = _s3_keys(s3_endpoint, mlrun_conn["bucket"])
    assert {f"data/runs/{run.id}/{f}" for f in ("runspec.json", "result.json", "logs.txt")} <= set(keys)


def test_a_failing_mlrun_handler_in_a_pod_fails_the_task_and_leaves_nothing(
    k8s: StandinK8s, mlrun_conn: dict, bundle: Path, s3_endpoint: str, capfd: pytest.CaptureFixture[str]
) -> None:
    employees = _employees()
    # deferrable: the pod is followed by KubernetesPodOperator's trigger, the run finished on re-entry
    dag = _dag(
        bundle, "mlrun_k8s_fail", task_id="fail", function="bad", code=BAD, handler="logs_then_fails",
        outputs=["partial"], deferrable=True,
    )  # fmt: skip
    dr = dag.test()
    out = capfd.readouterr()
    assert str(dr.state) == "failed"
    assert task_states(dr) == {"fail": "failed"}
    message = "the MLRun run bad-logs-then-fails ended error: after logging"
    logs = out.out + out.err
    assert f"ended ERROR: {message}" in logs  # the task's error is MLRun's message
    assert "Pausing task as DEFERRED" in logs and "in trigger_reentry" in logs  # failed on re-entry

    [run] = dh.list_runs("demo")
    assert run.status.state == "ERROR" and message in (run.status.message or ""), run.status.message
    assert run.status.get("launcher") == "kubernetes"
    assert 'raise RuntimeError("after logging")' in run.status.get("traceback")
    assert ("fail", "partial") not in xcoms("mlrun_k8s_fail", dr.run_id)
    # nothing half-written: no output entity, and on S3 only the input and the run's own files
    assert [d.key for d in dh.list_dataitems("demo")] == [employees.key]
    assert dh.list_artifacts("demo") == [] and dh.list_models("demo") == []
    input_key = employees.spec["path"].removeprefix(f"s3://{mlrun_conn['bucket']}/")
    keys = set(_s3_keys(s3_endpoint, mlrun_conn["bucket"]))
    assert keys == {input_key, *(f"data/runs/{run.id}/{f}" for f in ("runspec.json", "result.json", "logs.txt"))}

    [pod] = k8s.history
    assert pod.phase == "Failed" and pod.exit_code == 1 and not k8s.pods
    _check_pod(pod, run, mlrun_conn["bucket"])
    assert "Traceback" in pod.logs() and "after logging" in run.logs()
