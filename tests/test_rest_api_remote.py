"""Runs the official SDK submits for remote execution (local_execution=False), executed by a real
Airflow (api-server, scheduler, dag-processor) through the provider's digitalhub_runs DAG: through the
plugin inside the api-server, and through the standalone server with Airflow's REST API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_servers import AirflowDeployment, airflow_deployment, user_env
from tests.dhcore_sdk import api_server, run_workflow, sdk_available, sdk_python

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(not sdk_available(), reason="PyPI's index is unreachable: the official SDK cannot be installed"),
]
USER, PASSWORD = "bob", "remote-runs-9"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:
    home = tmp_path_factory.mktemp("airflow-remote")
    dh_home = tmp_path_factory.mktemp("dh-remote")
    import os

    envs = os.environ.get("DIGITALHUB_TEST_ENVS_DIR", "/tmp/dh-test-envs")
    env = {**user_env(home, USER, PASSWORD), "DIGITALHUB_HOME": str(dh_home), "DIGITALHUB_ENVS_DIR": envs}
    with airflow_deployment(home, env, login=(USER, PASSWORD)) as dep:
        dep.wait_dag("digitalhub_runs")
        dep.dh_home = dh_home  # type: ignore[attr-defined]
        yield dep
    assert dep.left_behind == [], dep.left_behind


def sdk_env(tmp_path: Path, endpoint: str, token: str | None = None) -> dict[str, str]:
    home = tmp_path / "sdk-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(home), "DH_CONFIG": str(home / "dhcore.ini"), "DHCORE_ENDPOINT": endpoint,
           "WF_PROJECT": f"remote-{uuid.uuid4().hex[:8]}"}  # fmt: skip
    if token:
        env["DHCORE_ACCESS_TOKEN"] = token
    return env


def check_remote_runs(observed: dict[str, Any], dep: AirflowDeployment) -> None:
    assert observed["submitted_state"] == "CREATED"
    done = observed["done"]
    assert done["state"] == "COMPLETED", done
    assert done["results"] == {"output": 42}
    failed = observed["failed"]
    assert failed["state"] == "ERROR" and "remote explosion 7" in failed["message"]
    assert observed["long_state_before_stop"] == "RUNNING"
    assert "stop_error" not in observed, observed.get("stop_error")
    long = observed["long"]
    assert long["state"] == "STOPPED", long
    airflow = long["airflow"]
    assert airflow["dag_id"] == "digitalhub_runs"
    assert dep.wait_run("digitalhub_runs", airflow["dag_run_id"], timeout=120) == "failed"
    done_dag_run = f"digitalhub__{done['id']}"
    assert dep.wait_run("digitalhub_runs", done_dag_run) == "success"
    assert dep.xcom("digitalhub_runs", done_dag_run, "run", "output") == 42


def test_the_sdk_runs_remotely_through_the_plugin(deployment: AirflowDeployment, tmp_path: Path) -> None:
    token = deployment.client.headers["Authorization"].split()[1]  # type: ignore[union-attr]
    env = sdk_env(tmp_path, f"{deployment.url}/digitalhub", token)
    observed = run_workflow(sdk_python(), "remote.py", env, timeout=900)
    check_remote_runs(observed, deployment)


def test_the_sdk_runs_remotely_through_the_standalone_server(deployment: AirflowDeployment, tmp_path: Path) -> None:
    dh_home: Path = deployment.dh_home  # type: ignore[attr-defined]
    airflow = {"DIGITALHUB_API_AIRFLOW_URL": deployment.url, "DIGITALHUB_API_AIRFLOW_USER": USER,
               "DIGITALHUB_API_AIRFLOW_PASSWORD": PASSWORD}  # fmt: skip
    with api_server(tmp_path, home=dh_home, extra_env=airflow) as url:
        observed = run_workflow(sdk_python(), "remote.py", sdk_env(tmp_path, url), timeout=900)
    check_remote_runs(observed, deployment)


def test_a_remote_run_airflow_cannot_take_ends_error(tmp_path: Path) -> None:
    """The standalone server pointed at an Airflow that does not answer: the run ends ERROR saying
    why, not CREATED."""
    from tests.servers import free_port

    options = {"airflow_url": f"http://127.0.0.1:{free_port()}", "airflow_user": "u", "airflow_password": "p"}
    with api_server(tmp_path, **options) as url:
        import httpx

        project = {"id": "nowhere", "name": "nowhere", "kind": "project", "spec": {}}
        assert httpx.post(f"{url}/api/v1/projects", json=project).status_code == 200
        fid, rid = uuid.uuid4().hex, uuid.uuid4().hex
        fn = {"id": fid, "name": "f", "kind": "python",
              "spec": {"python_version": "PYTHON3_11", "source": {"base64": "eA==", "handler": "h"}}}  # fmt: skip
        assert httpx.post(f"{url}/api/v1/-/nowhere/functions", json=fn).status_code == 200
        run = {"id": rid, "name": rid, "kind": "python+job:run", "spec": {"task": "python+job://nowhere/t",
               "function": f"python://nowhere/f:{fid}", "local_execution": False}}  # fmt: skip
        res = httpx.post(f"{url}/api/v1/-/nowhere/runs", json=run)
        assert res.status_code == 200, res.text
        stored = httpx.get(f"{url}/api/v1/-/nowhere/runs/{rid}").json()
    assert stored["status"]["state"] == "ERROR"
    assert "cannot be reached" in stored["status"]["message"], json.dumps(stored["status"])
