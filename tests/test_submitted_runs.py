"""SubmittedRunOperator and the digitalhub_runs DAG under dag.test(): a run created through the REST
API in DigitalHub Core's form (the function's code under ``source``, ``python://`` references) is
executed by key; bad keys and runs that cannot start end the task (and the run) with the reason."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from digitalhub_provider.api.app import create_app
from digitalhub_provider.sdk.context import get_context
from tests.airflow_helpers import load_dag, task_states, xcoms

pytestmark = pytest.mark.airflow
P = "subm"
CODE = "def double(x):\n    return x * 2\n"


def submit(client: TestClient, fid: str | None = None, code: str = CODE) -> dict[str, Any]:
    """A function and a run as the official SDK writes them (the run kept CREATED: local_execution
    is true, so the API does not hand it to Airflow itself)."""
    client.post("/api/v1/projects", json={"id": P, "name": P, "kind": "project", "spec": {}})
    fid = fid or uuid.uuid4().hex
    source = {"base64": base64.b64encode(code.encode()).decode(), "handler": "double", "lang": "python"}
    fn = {"id": fid, "name": "doubler", "kind": "python", "spec": {"python_version": "PYTHON3_11", "source": source}}
    assert client.post(f"/api/v1/-/{P}/functions", json=fn).status_code == 200
    rid = uuid.uuid4().hex
    run = {"id": rid, "name": rid, "kind": "python+job:run",
           "spec": {"task": f"python+job://{P}/t", "function": f"python://{P}/doubler:{fid}",
                    "parameters": {"x": 21}, "local_execution": True}}  # fmt: skip
    res = client.post(f"/api/v1/-/{P}/runs", json=run)
    assert res.status_code == 200, res.text
    return dict(res.json())


def stored_run(run: dict[str, Any]) -> dict[str, Any]:
    return get_context().metadata.get(P, "run", run["id"])


def test_a_submitted_run_executes_by_key(airflow_db: str) -> None:
    with TestClient(create_app()) as client:
        run = submit(client)
    dr = load_dag("digitalhub_runs.py").test(run_conf={"run_key": run["key"]})
    assert task_states(dr) == {"run": "success"}
    stored = stored_run(run)
    assert stored["status"]["state"] == "COMPLETED" and stored["status"]["results"] == {"output": 42}
    assert stored["spec"]["function"] == run["spec"]["function"]  # the SDK's form is kept
    assert xcoms("digitalhub_runs", dr.run_id)[("run", "output")] == 42
    # labelled with the task instance that ran it, as the runtime operators' runs are
    assert {"airflow.dag_id=digitalhub_runs", f"airflow.run_id={dr.run_id}", "airflow.task_id=run",
            "airflow.try_number=1"} <= set(stored["metadata"]["labels"])  # fmt: skip


def test_a_run_whose_function_is_gone_ends_error(airflow_db: str) -> None:
    with TestClient(create_app()) as client:
        run = submit(client)
        fid = run["spec"]["function"].rsplit(":", 1)[1]
        # Deleted by another writer of the store (this API refuses a function with runs without cascade).
        assert get_context().metadata.delete(P, "function", ids=[fid]) == 1
    dr = load_dag("digitalhub_runs.py").test(run_conf={"run_key": run["key"]})
    assert task_states(dr) == {"run": "failed"}
    stored = stored_run(run)
    assert stored["status"]["state"] == "ERROR" and "does not exist" in stored["status"]["message"]


def test_a_bad_handler_source_ends_error_with_the_handlers_error(airflow_db: str) -> None:
    with TestClient(create_app()) as client:
        run = submit(client, code="def double(x):\n    raise RuntimeError(f'no doubling {x}')\n")
    dr = load_dag("digitalhub_runs.py").test(run_conf={"run_key": run["key"]})
    assert task_states(dr) == {"run": "failed"}
    stored = stored_run(run)
    assert stored["status"]["state"] == "ERROR" and "no doubling 21" in stored["status"]["message"]


@pytest.mark.leaves_unfinished_runs  # the submitted run is left alone: that is the point
@pytest.mark.parametrize("key", ["", "store://subm/function/python/f:1", "store://subm/run/python+job:run/nope"])
def test_a_bad_run_key_fails_the_task_and_writes_nothing(airflow_db: str, key: str) -> None:
    with TestClient(create_app()) as client:
        run = submit(client)
    dr = load_dag("digitalhub_runs.py").test(run_conf={"run_key": key})
    assert task_states(dr) == {"run": "failed"}
    assert stored_run(run)["status"]["state"] == "CREATED"  # another run is left alone
    assert get_context().metadata.count(P, "run") == 1
