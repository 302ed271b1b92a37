"""The REST API (python -m digitalhub_provider.api) driven by the OFFICIAL DigitalHub SDK.

The SDK (digitalhub 0.15.* + digitalhub-runtime-python 0.15.*) runs in its own cached virtualenv,
never next to Airflow (tests/dhcore_sdk.py). Each test runs one workflow of tests/dhcore_workflows/
in the SDK environment, against a fresh standalone server and against the API inside a real Airflow
api-server (the provider's plugin, an Airflow token as DHCORE_ACCESS_TOKEN), and asserts on the JSON
it printed: ids, states, values and the SDK exception classes the server's answers map to
(docs/rest-api.md lists the routes and the error texts the SDK maps).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.dhcore_sdk import api_server, auth_headers, http, index_url, run_workflow, sdk_available, sdk_python

pytestmark = [
    pytest.mark.s3,
    pytest.mark.timeout(1800),  # the first test may build the SDK environment
    pytest.mark.skipif(
        not sdk_available(),
        reason=f"PyPI's index ({index_url()}) is unreachable: the official DigitalHub SDK cannot be installed",
    ),
]
PYTHON_VERSION = f"PYTHON3_{sys.version_info.minor}"  # the SDK env is built from this interpreter


@pytest.fixture(scope="module")
def sdk() -> str:
    return sdk_python()


def new_bucket(s3_endpoint: str) -> str:
    bucket = f"dh-sdk-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


def s3_client(s3_endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    return new_bucket(s3_endpoint)


class Endpoint(NamedTuple):
    """Where the SDK goes (``DHCORE_ENDPOINT``) and what else it needs there (a token)."""

    url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def airflow_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """The API inside a real Airflow api-server (the provider's plugin), behind Airflow's login."""
    from tests.airflow_servers import airflow_deployment, user_env

    home = tmp_path_factory.mktemp("airflow-sdk")
    env = {**user_env(home, "carol", "sdk-pw-42"), "DIGITALHUB_HOME": str(tmp_path_factory.mktemp("dh-sdk"))}
    with airflow_deployment(home, env, services=("api-server",), login=("carol", "sdk-pw-42")) as dep:
        assert dep.client is not None
        token = dep.client.headers["Authorization"].split()[1]
        yield Endpoint(f"{dep.url}/digitalhub", {"DHCORE_ACCESS_TOKEN": token})
    assert dep.left_behind == [], dep.left_behind


@pytest.fixture(params=["standalone", "airflow"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Endpoint]:
    """Each workflow against both deployments: a fresh standalone server, and the plugin in Airflow."""
    if request.param == "airflow":
        yield request.getfixturevalue("airflow_api")
        return
    with api_server(tmp_path) as url:
        yield Endpoint(url, {})


def sdk_env(tmp_path: Path, endpoint: Endpoint, s3_endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    """The SDK's whole environment: its own HOME and ini file, the server, moto's S3."""
    home = tmp_path / "sdk-home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **endpoint.env,
        "HOME": str(home),
        "DH_CONFIG": str(home / "dhcore.ini"),
        "DHCORE_ENDPOINT": endpoint.url,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "DHCORE_DEFAULT_FILES_STORE": f"s3://{bucket}",
        **extra,
    }


def err(observed: dict | None) -> tuple[str, str] | None:
    return None if observed is None else (observed["type"], observed["message"])


def error_type(observed: dict | None) -> str | None:
    return None if observed is None else observed["type"]


# -- projects ------------------------------------------------------------------------------------------
def test_projects_get_or_create_get_list_duplicate_missing(
    sdk: str, server: Endpoint, tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    env = sdk_env(tmp_path, server, s3_endpoint, bucket, WF_PROJECT="sdk-projects", WF_OTHER_PROJECT="sdk-other",
                  WF_MISSING_PROJECT="sdk-missing", WF_FILES_STORE="s3://configured-store")  # fmt: skip
    out = run_workflow(sdk, "projects.py", env)

    assert out["created"] == {"id": "sdk-projects", "name": "sdk-projects", "key": "store://sdk-projects",
                              "kind": "project"}  # fmt: skip
    # the second get_or_create_project found the first one: same project, first description
    assert (out["again_id"], out["again_description"]) == ("sdk-projects", "first")
    assert out["got"] == {"id": "sdk-projects", "name": "sdk-projects", "description": "first",
                          "config": {"default_files_store": "s3://configured-store"}, "source": "./"}  # fmt: skip
    assert {"sdk-projects", "sdk-other"} <= set(out["listed"]) and "sdk-missing" not in out["listed"]
    assert error_type(out["duplicate"]) == "EntityAlreadyExistsError"
    assert out["description_after_duplicate"] == "first"  # the refused duplicate overwrote nothing
    assert error_type(out["missing"]) == "EntityNotExistsError"


# -- functions -----------------------------------------------------------------------------------------
def test_function_versions_lists_duplicates_update_delete(
    sdk: str, server: Endpoint, tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    project = "sdk-functions"
    out = run_workflow(sdk, "functions.py", sdk_env(tmp_path, server, s3_endpoint, bucket, WF_PROJECT=project))
    v1, v2, beta = out["v1"]["id"], out["v2"]["id"], out["beta_id"]

    assert len({v1, v2, beta}) == 3
    assert out["v1"]["key"] == f"store://{project}/function/python/alpha:{v1}"
    assert out["latest_id"] == v2  # get_function(name) takes the newest version
    assert out["by_id"] == {"id": v1, "description": "v1", "kind": "python", "handler": "add",
                            "python_version": PYTHON_VERSION, "has_code": True}  # fmt: skip
    assert out["by_key_id"] == v1
    assert out["versions"] == [v2, v1]  # every version, newest first
    assert out["listed"] == sorted([["alpha", v2], ["beta", beta]])  # latest version of each name
    assert out["listed_all"] == sorted([v1, v2, beta])
    assert out["listed_beta"] == [beta]
    assert error_type(out["duplicate"]) == "EntityAlreadyExistsError"
    assert out["description_after_duplicate"] == "v1"  # the refused duplicate overwrote nothing
    assert error_type(out["missing_id"]) == "EntityNotExistsError"
    assert err(out["missing_name"]) == ("BackendError", "No object found.")  # an empty page
    assert out["updated"] == {"id": beta, "description": "beta updated"}
    assert out["beta_again_description"] == "beta updated"
    assert out["versions_after_delete"] == [v2]
    assert error_type(out["deleted_get"]) == "EntityNotExistsError"


# -- table dataitem on S3 ------------------------------------------------------------------------------
def test_table_dataitem_written_to_s3_and_read_back(
    sdk: str, server: Endpoint, tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    project = "sdk-dataitems"
    project_bucket = new_bucket(s3_endpoint)  # the project's default_files_store beats the env's
    env = sdk_env(tmp_path, server, s3_endpoint, bucket, WF_PROJECT=project, WF_FILES_STORE=f"s3://{project_bucket}")
    out = run_workflow(sdk, "dataitem.py", env)
    logged, back = out["logged"], out["back"]

    assert (logged["kind"], logged["state"]) == ("table", "READY")
    assert logged["key"] == f"store://{project}/dataitem/table/cities:{logged['id']}"
    assert (back["id"], back["state"], out["by_key_id"]) == (logged["id"], "READY", logged["id"])
    assert out["records"] == [
        {"city": "Trento", "population": 118000, "area": 157.9},
        {"city": "Bolzano", "population": 107000, "area": 52.3},
        {"city": "Verona", "population": 257000, "area": 198.9},
    ]
    assert out["columns"] == ["city", "population", "area"]
    assert [f["name"] for f in back["schema"]["fields"]] == ["city", "population", "area"]
    assert {c["name"] for c in back["preview"]["cols"]} == {"city", "population", "area"}
    # the parquet file is on moto's S3, in the bucket of the project's config, where spec.path says
    path = back["path"]
    assert path.startswith(f"s3://{project_bucket}/") and path.endswith(".parquet"), path
    head = s3_client(s3_endpoint).head_object(Bucket=project_bucket, Key=path.removeprefix(f"s3://{project_bucket}/"))
    assert head["ContentLength"] > 0
    assert out["listed"] == [logged["id"]]


# -- local runs ----------------------------------------------------------------------------------------
def test_local_runs_outputs_results_errors_and_filters(
    sdk: str, server: Endpoint, tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    project = "sdk-runs"
    out = run_workflow(sdk, "runs.py", sdk_env(tmp_path, server, s3_endpoint, bucket, WF_PROJECT=project))
    fn, run, table, stored = out["function"], out["run"], out["table"], out["stored"]
    maker = f"python://{project}/maker:{fn['id']}"

    assert (run["kind"], run["state"], run["results"], out["result_total"]) == (
        "python+job:run", "COMPLETED", {"total": 18}, 18)  # fmt: skip
    assert run["outputs"]["table"] == table["key"]
    assert {"type": "run_of", "dest": fn["key"]} in [{k: r[k] for k in ("type", "dest")} for r in run["relationships"]]
    # the DataFrame output: a table dataitem on S3, read back through the run
    assert (table["kind"], table["state"]) == ("table", "READY")
    assert table["path"].startswith(f"s3://{bucket}/") and table["path"].endswith(".parquet")
    assert out["records"] == [{"i": 0, "v": 0}, {"i": 1, "v": 3}, {"i": 2, "v": 6}, {"i": 3, "v": 9}]
    assert {"type": "produced_by", "dest": f"{run['key']}:{run['id']}"} in [
        {k: r[k] for k in ("type", "dest")} for r in table["relationships"]
    ]
    # what the server stored
    assert stored == {"id": run["id"], "state": "COMPLETED", "results": {"total": 18},
                      "outputs": {"table": table["key"]}, "spec_function": maker, "local_execution": True}  # fmt: skip
    assert out["by_id"] == {"id": run["id"], "state": "COMPLETED"}
    assert out["logs"]["type"] == "list"
    # a fresh function object finds the task of the first run instead of creating another one
    second = out["second"]
    assert (second["state"], second["total"]) == ("COMPLETED", 10) and second["id"] != run["id"]
    assert second["task"] == second["first_task"]
    assert out["tasks"] == [{"id": second["task"].rsplit("/", 1)[-1], "kind": "python+job", "function": maker}]
    # the failing handler: function.run raises, the run is stored as ERROR with the SDK's message
    assert err(out["failure"]) == ("RuntimeError", "Something got wrong during function execution.")
    assert out["returned"] is None
    [error_run] = out["error_runs"]
    assert (error_run["state"], error_run["message"]) == ("ERROR", "Something got wrong during function execution.")
    assert error_run["function"].startswith(f"python://{project}/exploder:")
    assert out["exploder_runs"] == [error_run["id"]]
    assert out["completed_runs"] == sorted([run["id"], second["id"]]) == out["maker_runs"]
    assert out["all_runs"] == 3
    # each run logged its own version of the "table" dataitem: the list holds the latest only
    [[name, latest_id]] = out["dataitems_latest"]
    assert name == "table" and latest_id != table["id"]
    assert out["dataitems_all"] == 2
    assert error_type(out["missing_run"]) == "EntityNotExistsError"


# -- deletes -------------------------------------------------------------------------------------------
def test_delete_function_all_versions_cascade_and_project_cascade(
    sdk: str, server: Endpoint, tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    project = "sdk-cleanup"
    out = run_workflow(sdk, "cleanup.py", sdk_env(tmp_path, server, s3_endpoint, bucket, WF_PROJECT=project))
    before, after = out["before"], out["after"]
    keeper = out["keeper"]["function"]

    assert before["states"] == ["COMPLETED"] * 3 and before["sums"] == [3, 7, 11]
    assert before["runs"] == sorted([*out["doomed_runs"], out["kept_run"]])
    assert before["tasks"] == sorted([*out["doomed_functions"], keeper])

    assert after["versions"] == []
    assert err(after["get_latest"]) == ("BackendError", "No object found.")
    assert error_type(after["get_v1"]) == "EntityNotExistsError"
    assert after["functions"] == ["keeper"]
    assert after["runs"] == [out["kept_run"]]  # the doomed functions' runs went with them
    assert after["tasks"] == [keeper]
    assert [error_type(e) for e in after["doomed_run"]] == ["EntityNotExistsError"] * 2
    assert after["kept_run_state"] == "COMPLETED"

    assert error_type(out["project_gone"]) == "EntityNotExistsError"
    assert project not in out["listed_after_delete"]
    assert out["recreated"] == project
    assert out["leftovers"] == {"functions": 0, "runs": 0, "tasks": 0}  # the cascade removed the children
    assert error_type(out["final"]) == "EntityNotExistsError"


# -- credentials ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, right, wrong",
    [
        ({"token": "t0k3n-right"}, {"DHCORE_ACCESS_TOKEN": "t0k3n-right"}, {"DHCORE_ACCESS_TOKEN": "t0k3n-wrong"}),
        (
            {"user": "alice", "password": "pa55"},
            {"DHCORE_USER": "alice", "DHCORE_PASSWORD": "pa55"},
            {"DHCORE_USER": "alice", "DHCORE_PASSWORD": "wrong"},
        ),
    ],
    ids=["token", "basic"],
)
def test_credentials_right_ones_work_wrong_ones_are_refused_and_write_nothing(
    sdk: str,
    tmp_path: Path,
    s3_endpoint: str,
    bucket: str,
    options: dict[str, str],
    right: dict[str, str],
    wrong: dict[str, str],
) -> None:
    with api_server(tmp_path, **options) as url:
        good = run_workflow(sdk, "auth.py", sdk_env(tmp_path / "right", Endpoint(url, {}), s3_endpoint, bucket,
                                                    WF_PROJECT="guarded", **right))  # fmt: skip
        assert error_type(good["first_get"]) == "EntityNotExistsError", good  # authenticated, not there yet
        assert good["ok"] is True, good
        assert (good["project"], good["functions"]) == ("guarded", [good["function_id"]])

        for project in ("intruder", "guarded"):  # a new project, and a write into an existing one
            env = sdk_env(tmp_path / f"wrong-{project}", Endpoint(url, {}), s3_endpoint, bucket, WF_PROJECT=project,
                          **wrong)  # fmt: skip
            refused = run_workflow(sdk, "auth.py", env)
            assert error_type(refused["first_get"]) == "UnauthorizedError", refused
            # SDK 0.15.11: a process's second 401 surfaces as ClientError (its refresh fallback is spent)
            assert refused["ok"] is False, refused
            auth_type = "access_token_only" if "token" in options else "basic"
            spent = ("ClientError", f"Auth type {auth_type} does not support refresh.")
            assert error_type(refused["error"]) == "UnauthorizedError" or err(refused["error"]) == spent, refused

        # a direct write with the wrong credentials is refused too
        source = {"handler": "h", "code": "def h(): pass"}
        body = {"id": uuid.uuid4().hex, "name": "sneaky", "kind": "python", "project": "guarded",
                "spec": {"python_version": PYTHON_VERSION, "source": source}}  # fmt: skip
        bad_headers = auth_headers({"token": "t0k3n-wrong"} if "token" in options else {**options, "password": "x"})
        status, text = http("POST", f"{url}/api/v1/-/guarded/functions", bad_headers, body)
        assert status == 401, (status, text)
        assert http("GET", f"{url}/api/v1/projects?page=0")[0] == 401  # no credentials at all

        # nothing was written by the refused clients (checked with the right credentials)
        headers = auth_headers(options)
        status, text = http("GET", f"{url}/api/v1/projects/intruder", headers)
        assert status == 404 and "No such EntityName" in text, (status, text)
        status, text = http("GET", f"{url}/api/v1/projects?page=0", headers)
        assert status == 200, (status, text)
        assert [p["name"] for p in json.loads(text)["content"]] == ["guarded"]
        status, text = http("GET", f"{url}/api/v1/-/guarded/functions?versions=all&page=0", headers)
        assert status == 200, (status, text)
        assert [f["id"] for f in json.loads(text)["content"]] == [good["function_id"]]
