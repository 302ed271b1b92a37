"""The REST API inside a real Airflow api-server (the provider's plugin at /digitalhub): Airflow's
own authentication on every route, the stores of the digitalhub_default connection."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.airflow_servers import AirflowDeployment, airflow_deployment, user_env

pytestmark = pytest.mark.airflow
USER, PASSWORD = "alice", "wonder-land-42"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:
    home = tmp_path_factory.mktemp("airflow-api")
    dh_home = tmp_path_factory.mktemp("dh-api")
    conn = {"conn_type": "digitalhub", "extra": {"metadata_url": f"sqlite:///{dh_home / 'from-conn.db'}"}}
    env = {
        **user_env(home, USER, PASSWORD),
        "DIGITALHUB_HOME": str(dh_home),
        "AIRFLOW_CONN_DIGITALHUB_DEFAULT": json.dumps(conn),
    }
    with airflow_deployment(home, env, services=("api-server",), login=(USER, PASSWORD)) as dep:
        dep.dh_home = dh_home  # type: ignore[attr-defined]
        yield dep
    assert dep.left_behind == [], dep.left_behind


def dh(dep: AirflowDeployment, method: str, path: str, token: str | None = "airflow", **kw: object) -> httpx.Response:
    assert dep.client is not None
    headers = {}
    if token == "airflow":
        headers["Authorization"] = dep.client.headers["Authorization"]
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{dep.url}/digitalhub{path}", headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def test_every_route_needs_an_airflow_token(deployment: AirflowDeployment) -> None:
    project = {"id": "secret-p", "name": "secret-p", "kind": "project", "spec": {}}
    for token in (None, "not-a-jwt", deployment.client.headers["Authorization"].split()[1] + "x"):  # type: ignore[union-attr]
        assert dh(deployment, "GET", "/api/auth", token=token).status_code == 401
        res = dh(deployment, "POST", "/api/v1/projects", token=token, json=project)
        assert res.status_code == 401 and "token" in res.json()["message"]
    assert dh(deployment, "GET", "/api/v1/projects/secret-p").status_code == 404  # nothing was written
    assert dh(deployment, "GET", "/api/auth").status_code == 200


def test_entities_through_the_plugin_land_in_the_connection_store(deployment: AirflowDeployment) -> None:
    project = {"id": "plug", "name": "plug", "kind": "project", "spec": {}}
    assert dh(deployment, "POST", "/api/v1/projects", json=project).status_code == 200
    fid = uuid.uuid4().hex
    fn = {"id": fid, "name": "f", "kind": "python", "project": "plug",
          "spec": {"python_version": "PYTHON3_11", "source": {"base64": "eA==", "handler": "h"}}}  # fmt: skip
    res = dh(deployment, "POST", "/api/v1/-/plug/functions", json=fn)
    assert res.status_code == 200 and res.headers["X-Api-Level"] == "15", res.text
    page = dh(deployment, "GET", "/api/v1/-/plug/functions", params={"page": 0}).json()
    assert [f["id"] for f in page["content"]] == [fid]
    again = dh(deployment, "POST", "/api/v1/-/plug/functions", json=fn)
    assert again.status_code == 400 and "Duplicated entity" in again.json()["message"]
    # the connection's metadata_url, not DIGITALHUB_HOME's default database
    dh_home: Path = deployment.dh_home  # type: ignore[attr-defined]
    assert (dh_home / "from-conn.db").exists() and not (dh_home / "metadata.db").exists()
    assert dh(deployment, "GET", "/openapi.json").json()["info"]["title"].startswith("DigitalHub Core API")
