"""The REST API in-process (FastAPI's test client over the real SQLite store): routes, list pages,
cascades, run transitions, bad input and auth. The official SDK drives it in test_rest_api_sdk.py."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from digitalhub_provider.api.app import create_app
from digitalhub_provider.api.auth import Credentials, check_bind
from digitalhub_provider.sdk.context import get_context

P = "demo"
CODE = base64.b64encode(b"def handler():\n    return 1\n").decode()


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(max_body=64 * 1024)) as c:
        assert c.post("/api/v1/projects", json=project()).status_code == 200
        yield c


def project(name: str = P) -> dict[str, Any]:
    return {"id": name, "name": name, "kind": "project", "metadata": {"project": name}, "spec": {"source": "./"}}


def function(name: str = "f", fid: str | None = None, **spec: Any) -> dict[str, Any]:
    fid = fid or uuid.uuid4().hex
    return {
        "id": fid,
        "name": name,
        "kind": "python",
        "project": P,
        "metadata": {"project": P, "name": name, "embedded": False},
        "spec": {
            "python_version": "PYTHON3_11",
            "source": {"base64": CODE, "handler": "handler", "lang": "python"},
            **spec,
        },
        "status": {"state": "CREATED"},
    }


def task(fn: dict[str, Any]) -> dict[str, Any]:
    tid = uuid.uuid4().hex
    ref = f"python://{P}/{fn['name']}:{fn['id']}"
    return {
        "id": tid,
        "name": tid,
        "kind": "python+job",
        "project": P,
        "metadata": {"project": P, "name": tid},
        "spec": {"function": ref, "node_selector": None, "k8s_extra": {"a": 1}},
        "status": {"state": "CREATED"},
    }


def run(fn: dict[str, Any], tk: dict[str, Any], state: str = "CREATED") -> dict[str, Any]:
    rid = uuid.uuid4().hex
    return {
        "id": rid,
        "name": rid,
        "kind": "python+job:run",
        "project": P,
        "metadata": {"project": P, "name": rid, "relationships": [{"type": "run_of", "dest": "store://x"}]},
        "spec": {
            "task": f"python+job://{P}/{tk['id']}",
            "function": tk["spec"]["function"],
            "local_execution": True,
            "parameters": {"a": 1},
        },
        "status": {"state": state},
    }


def post(c: TestClient, plural: str, entity: dict[str, Any]) -> dict[str, Any]:
    res = c.post(f"/api/v1/-/{P}/{plural}", json=entity)
    assert res.status_code == 200, res.text
    return res.json()


def test_entities_are_stored_as_sent_and_read_back(client: TestClient) -> None:
    fn = function()
    stored = post(client, "functions", fn)
    assert stored["spec"] == fn["spec"] and stored["metadata"]["embedded"] is False
    assert stored["key"] == f"store://{P}/function/python/f:{fn['id']}"
    got = client.get(f"/api/v1/-/{P}/functions/{fn['id']}")
    assert got.json() == stored and got.headers["X-Api-Level"] == "15"
    assert client.get(f"/api/v1/projects/{P}").json()["name"] == P


def test_lists_are_pages_newest_first_latest_version_per_name(client: TestClient) -> None:
    first, second = function("f"), function("f")
    other = function("g")
    for e in (first, second, other):
        post(client, "functions", e)
    latest = client.get(f"/api/v1/-/{P}/functions", params={"page": 0}).json()
    assert [e["id"] for e in latest["content"]] == [other["id"], second["id"]]
    assert latest["totalPages"] == 1 and latest["totalElements"] == 2
    every = client.get(f"/api/v1/-/{P}/functions", params={"versions": "all", "name": "f"}).json()
    assert [e["id"] for e in every["content"]] == [second["id"], first["id"]]
    paged = client.get(f"/api/v1/-/{P}/functions", params={"versions": "all", "size": 2, "page": 1}).json()
    assert [e["id"] for e in paged["content"]] == [first["id"]] and paged["totalPages"] == 2
    past = client.get(f"/api/v1/-/{P}/functions", params={"page": 7}).json()
    assert past["content"] == [] and past["totalPages"] == 1
    assert client.get(f"/api/v1/-/{P}/functions", params={"name": "nope"}).json()["content"] == []


@pytest.mark.leaves_unfinished_runs  # runs stored in every state, to filter
def test_tasks_and_runs_filter_by_function_version_and_state(client: TestClient) -> None:
    f1, f2 = post(client, "functions", function("f")), post(client, "functions", function("f"))
    t1, t2 = post(client, "tasks", task(f1)), post(client, "tasks", task(f2))
    r1 = post(client, "runs", run(f1, t1))
    post(client, "runs", run(f2, t2))
    ref = f"python://{P}/f:{f1['id']}"
    tasks = client.get(f"/api/v1/-/{P}/tasks", params={"function": ref, "kind": "python+job"}).json()
    assert [t["id"] for t in tasks["content"]] == [t1["id"]]
    assert client.get(f"/api/v1/-/{P}/tasks", params={"function": ref, "kind": "job"}).json()["content"] == []
    runs = client.get(f"/api/v1/-/{P}/runs", params={"function": ref, "state": "CREATED"}).json()
    assert [r["id"] for r in runs["content"]] == [r1["id"]]
    assert client.get(f"/api/v1/-/{P}/runs", params={"state": "RUNNING"}).json()["totalElements"] == 0


def test_runs_filter_by_labels_all_of_them_in_pages(client: TestClient) -> None:
    """``labels`` repeated: the runs carrying every one (exact labels, not prefixes), paged and counted."""
    fn = post(client, "functions", function("f"))
    tk = post(client, "tasks", task(fn))
    made = []
    for i in range(5):
        r = run(fn, tk, state="COMPLETED")
        r["metadata"]["labels"] = ["airflow.dag_id=d", f"airflow.task_id={'t' if i % 2 == 0 else 't2'}"]
        made.append(post(client, "runs", r)["id"])
    url = f"/api/v1/-/{P}/runs"
    both = {"labels": ["airflow.dag_id=d", "airflow.task_id=t"]}
    page = client.get(url, params={**both, "size": 2, "page": 1}).json()
    assert [r["id"] for r in page["content"]] == [made[0]]  # runs 4, 2 on page 0; run 0 on page 1
    assert page["totalElements"] == 3 and page["totalPages"] == 2
    first = client.get(url, params={**both, "size": 2}).json()
    assert [r["id"] for r in first["content"]] == [made[4], made[2]]
    one = client.get(url, params={"labels": "airflow.task_id=t2"}).json()
    assert [r["id"] for r in one["content"]] == [made[3], made[1]]
    assert client.get(url, params={"labels": "airflow.task_id"}).json()["totalElements"] == 0
    assert client.get(url, params={"labels": ["airflow.task_id=t", "airflow.task_id=t2"]}).json()["content"] == []


def test_a_run_moves_through_the_transition_table_only(client: TestClient) -> None:
    fn = post(client, "functions", function())
    r = post(client, "runs", run(fn, post(client, "tasks", task(fn))))
    url = f"/api/v1/-/{P}/runs/{r['id']}"
    for state in ("BUILT", "READY", "RUNNING", "RUNNING"):
        res = client.put(url, json={**r, "status": {"state": state}})
        assert res.status_code == 200, res.text
    done = {
        **r,
        "status": {"state": "COMPLETED", "results": {"x": 1}, "outputs": {"df": "store://demo/dataitem/table/df:1"}},
    }
    assert client.put(url, json=done).json()["status"]["results"] == {"x": 1}
    back = client.put(url, json={**r, "status": {"state": "RUNNING"}})
    assert back.status_code == 400 and "cannot go from COMPLETED to RUNNING" in back.json()["message"]
    assert client.get(url).json()["status"]["state"] == "COMPLETED"
    unknown = client.put(url, json={**r, "status": {"state": "DANCING"}})
    assert unknown.status_code == 400 and "DANCING" in unknown.json()["message"]


def test_a_run_is_created_in_a_known_state_and_only_a_created_one_is_executed(client: TestClient) -> None:
    fn = post(client, "functions", function())
    tk = post(client, "tasks", task(fn))
    res = client.post(f"/api/v1/-/{P}/runs", json=run(fn, tk, state="UPLOADING"))  # a dataitem's, not a run's
    assert res.status_code == 400 and "unknown state 'UPLOADING'" in res.json()["message"]
    assert client.get(f"/api/v1/-/{P}/runs").json()["content"] == []
    imported = {**run(fn, tk, state="COMPLETED"), "spec": {**run(fn, tk)["spec"], "local_execution": False}}
    stored = post(client, "runs", imported)  # a record: nothing to execute, whatever local_execution says
    assert stored["status"]["state"] == "COMPLETED" and "airflow" not in stored["status"]
    remote = {**run(fn, tk), "spec": {**run(fn, tk)["spec"], "local_execution": False}}
    refused = post(client, "runs", remote)  # this server has no Airflow to execute it
    assert refused["status"]["state"] == "ERROR" and "executes no runs" in refused["status"]["message"]


def test_stop_ends_a_run_stopped_and_a_later_client_update_is_refused(client: TestClient) -> None:
    fn = post(client, "functions", function())
    r = post(client, "runs", run(fn, post(client, "tasks", task(fn))))
    stopped = client.post(f"/api/v1/-/{P}/runs/{r['id']}/stop", json={})
    assert stopped.status_code == 200 and stopped.json()["status"]["state"] == "STOPPED"
    late = client.put(f"/api/v1/-/{P}/runs/{r['id']}", json={**r, "status": {"state": "BUILT"}})
    assert late.status_code == 400 and "STOPPED" in late.json()["message"]
    assert client.get(f"/api/v1/-/{P}/runs/{r['id']}/logs").json() == []
    resume = client.post(f"/api/v1/-/{P}/runs/{r['id']}/resume", json={})
    assert resume.status_code == 400 and "not supported" in resume.json()["message"]


def test_delete_one_version_all_versions_and_cascade(client: TestClient) -> None:
    f1, f2, g = (post(client, "functions", function(n)) for n in ("f", "f", "g"))
    t1, tg = post(client, "tasks", task(f1)), post(client, "tasks", task(g))
    r1, rg = post(client, "runs", run(f1, t1)), post(client, "runs", run(g, tg))
    assert client.delete(f"/api/v1/-/{P}/functions/{f1['id']}", params={"cascade": "true"}).status_code == 200
    assert client.get(f"/api/v1/-/{P}/functions/{f1['id']}").status_code == 404
    assert client.get(f"/api/v1/-/{P}/runs/{r1['id']}").status_code == 404
    assert client.get(f"/api/v1/-/{P}/tasks/{t1['id']}").status_code == 404
    assert client.get(f"/api/v1/-/{P}/functions/{f2['id']}").status_code == 200
    assert client.delete(f"/api/v1/-/{P}/functions", params={"name": "f", "cascade": "true"}).status_code == 200
    assert client.get(f"/api/v1/-/{P}/functions", params={"versions": "all"}).json()["totalElements"] == 1
    assert client.get(f"/api/v1/-/{P}/runs/{rg['id']}").status_code == 200  # another function's run stays
    assert client.delete(f"/api/v1/projects/{P}", params={"cascade": "true"}).status_code == 200
    assert client.get(f"/api/v1/projects/{P}").status_code == 404
    assert get_context().metadata.count(P, "run") == 0


@pytest.mark.parametrize(
    ("request_args", "status", "text"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "malformed JSON"),
        ({"json": [1, 2]}, 400, "must be a JSON object"),
        ({"json": {"id": "x", "name": "f", "kind": "python"}}, 400, "missing spec"),
        ({"json": {"name": "f", "kind": "python", "spec": {}}}, 400, "'id'"),
        ({"json": function(python_version="PYTHON2_7")}, 400, "python_version"),
        ({"json": {**function(), "kind": "cobol"}}, 400, "unknown function kind 'cobol'"),
        ({"json": {**function(), "name": "a b"}}, 400, "invalid field 'name'"),
        ({"json": {**function(), "project": "other"}}, 400, "differs from the path"),
        ({"json": {**function(), "status": {"state": "HAPPY"}}}, 400, "HAPPY"),
    ],
)
def test_bad_bodies_are_400_naming_the_problem_and_store_nothing(
    client: TestClient, request_args: dict[str, Any], status: int, text: str
) -> None:
    res = client.post(f"/api/v1/-/{P}/functions", **request_args)
    assert res.status_code == status and text in res.json()["message"], res.text
    assert get_context().metadata.count(P, "function", all_versions=True) == 0


def test_duplicates_missing_entities_and_unknown_types(client: TestClient) -> None:
    fn = post(client, "functions", function())
    again = client.post(f"/api/v1/-/{P}/functions", json={**fn, "name": "other"})
    assert again.status_code == 400 and "Duplicated entity" in again.json()["message"]
    assert client.get(f"/api/v1/-/{P}/functions/{fn['id']}").json()["name"] == "f"  # nothing overwritten
    assert "Duplicated entity" in client.post("/api/v1/projects", json=project()).json()["message"]
    missing = client.get(f"/api/v1/-/{P}/functions/{uuid.uuid4().hex}")
    assert missing.status_code == 404 and "No such EntityName" in missing.json()["message"]
    assert client.get("/api/v1/projects/nope").status_code == 404
    assert client.post("/api/v1/-/nope/functions", json=function()).status_code == 404
    unknown = client.get(f"/api/v1/-/{P}/spaceships")
    assert unknown.status_code == 400 and "unknown entity type 'spaceships'" in unknown.json()["message"]
    mismatch = client.put(f"/api/v1/-/{P}/functions/{uuid.uuid4().hex}", json=fn)
    assert mismatch.status_code == 404
    wrong_id = client.put(f"/api/v1/-/{P}/functions/{fn['id']}", json={**fn, "id": "abc"})
    assert wrong_id.status_code == 400 and "differs from the path" in wrong_id.json()["message"]
    filt = client.get(f"/api/v1/-/{P}/runs", params={"q": "x"})
    assert filt.status_code == 400 and "unsupported filter" in filt.json()["message"]


def test_a_body_over_the_limit_is_413_and_stores_nothing(client: TestClient) -> None:
    big = function(requirements=["x" * 100] * 1000)
    res = client.post(f"/api/v1/-/{P}/functions", json=big)
    assert res.status_code == 413 and "over" in res.json()["message"]
    assert get_context().metadata.count(P, "function", all_versions=True) == 0


def test_openapi_is_served() -> None:
    with TestClient(create_app()) as c:
        doc = c.get("/openapi.json").json()
        assert "/api/v1/-/{project}/{plural}" in doc["paths"] and "Envelope" in doc["components"]["schemas"]
        assert c.get("/docs").status_code == 200


def test_credentials_are_required_when_configured_and_wrong_ones_write_nothing() -> None:
    app = create_app(Credentials(token="s3cr3t-token", user="alice", password="pw"))
    with TestClient(app) as c:
        assert c.get("/api/auth").status_code == 401
        bad = c.post("/api/v1/projects", json=project(), headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401 and "s3cr3t" not in bad.text
        assert c.get("/api/v1/projects", auth=("alice", "nope")).status_code == 401
        assert get_context().metadata.count(None, "project") == 0
        assert c.get("/api/auth", headers={"Authorization": "Bearer s3cr3t-token"}).status_code == 200
        ok = c.post("/api/v1/projects", json=project(), auth=("alice", "pw"))
        assert ok.status_code == 200
    assert "s3cr3t" not in repr(Credentials(token="s3cr3t-token"))


def test_anonymous_serving_is_refused_off_loopback() -> None:
    check_bind("127.0.0.1", Credentials())
    with pytest.raises(SystemExit, match="without authentication"):
        check_bind("0.0.0.0", Credentials())
    check_bind("0.0.0.0", Credentials(token="t"))


# -- the data of dataitems, artifacts and models ---------------------------------------------------------------
def material(plural: str, name: str, kind: str, path: str, **status: Any) -> dict[str, Any]:
    mid = uuid.uuid4().hex
    return {
        "id": mid,
        "name": name,
        "kind": kind,
        "project": P,
        "metadata": {"project": P, "name": name},
        "spec": {"path": path},
        "status": {"state": "CREATED", **status},
    }


def data_url(name: str, filename: str) -> str:
    return get_context().data_url(P, "material", name, filename)


def test_a_table_dataitem_previews_its_schema_and_first_rows(client: TestClient) -> None:
    import pandas as pd

    ctx = get_context()
    df = pd.DataFrame({"city": ["Rome", "Trento", "Levico"], "pop": [2800000, 118000, None], "w": [1.5, 2.5, 3.5]})
    path = ctx.tables.write_df(ctx, df, data_url("cities", "data.parquet"))
    di = post(client, "dataitems", material("dataitems", "cities", "table", path, rows=3))
    res = client.get(f"/api/v1/-/{P}/dataitems/{di['id']}/preview", params={"rows": 2})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["schema"]["fields"] == [
        {"name": "city", "type": "str"},
        {"name": "pop", "type": "float64"},
        {"name": "w", "type": "float64"},
    ]
    assert body["rows"] == [{"city": "Rome", "pop": 2800000.0, "w": 1.5}, {"city": "Trento", "pop": 118000.0, "w": 2.5}]
    assert body["total_rows"] == 3
    every = client.get(f"/api/v1/-/{P}/dataitems/{di['id']}/preview").json()
    assert len(every["rows"]) == 3 and every["rows"][2]["pop"] is None  # NaN is null
    too_many = client.get(f"/api/v1/-/{P}/dataitems/{di['id']}/preview", params={"rows": 201})
    assert too_many.status_code == 400 and "rows" in too_many.json()["message"]
    # integer column labels (kept as integers in the file's pandas metadata) are the JSON's text keys
    labels = ctx.tables.write_df(ctx, pd.DataFrame([[1, "a"], [2, "b"]]), data_url("ints", "data.parquet"))
    ints = post(client, "dataitems", material("dataitems", "ints", "table", labels))
    body = client.get(f"/api/v1/-/{P}/dataitems/{ints['id']}/preview").json()
    assert [f["name"] for f in body["schema"]["fields"]] == ["0", "1"]
    assert body["rows"] == [{"0": 1, "1": "a"}, {"0": 2, "1": "b"}]


def test_a_csv_dataitem_previews_only_its_first_rows(client: TestClient) -> None:
    path = data_url("big", "data.csv")
    get_context().data_store(path).write_bytes(path, b"a,b\n" + b"".join(b"%d,x%d\n" % (i, i) for i in range(1000)))
    di = post(client, "dataitems", material("dataitems", "big", "table", path))
    body = client.get(f"/api/v1/-/{P}/dataitems/{di['id']}/preview", params={"rows": 3}).json()
    assert body["rows"] == [{"a": 0, "b": "x0"}, {"a": 1, "b": "x1"}, {"a": 2, "b": "x2"}]
    assert body["schema"]["fields"] == [{"name": "a", "type": "int64"}, {"name": "b", "type": "str"}]
    assert body["total_rows"] is None  # not recorded in its status


def test_no_preview_for_a_dataitem_that_is_not_a_table_or_whose_file_is_gone(client: TestClient) -> None:
    import pandas as pd

    ctx = get_context()
    other = post(client, "dataitems", material("dataitems", "blob", "dataitem", data_url("blob", "x.bin")))
    res = client.get(f"/api/v1/-/{P}/dataitems/{other['id']}/preview")
    assert res.status_code == 400 and "only a table has a preview" in res.json()["message"]
    path = ctx.tables.write_df(ctx, pd.DataFrame({"a": [1]}), data_url("gone", "data.parquet"))
    di = post(client, "dataitems", material("dataitems", "gone", "table", path))
    ctx.data_store(path).delete(path)
    gone = client.get(f"/api/v1/-/{P}/dataitems/{di['id']}/preview")
    assert gone.status_code == 404
    assert "the file of dataitem 'gone' is gone from the data store" in gone.json()["message"]
    download = client.get(f"/api/v1/-/{P}/dataitems/{di['id']}/files/download")
    assert download.status_code == 404 and "is gone" in download.json()["message"]
    assert client.get(f"/api/v1/-/{P}/dataitems/{uuid.uuid4().hex}/preview").status_code == 404


def test_an_artifact_downloads_as_its_bytes(client: TestClient) -> None:
    payload = bytes(range(256)) * 1000
    path = data_url("weights", "weights.bin")
    get_context().data_store(path).write_bytes(path, payload)
    art = post(client, "artifacts", material("artifacts", "weights", "artifact", path))
    res = client.get(f"/api/v1/-/{P}/artifacts/{art['id']}/files/download")
    assert res.status_code == 200 and res.content == payload
    assert res.headers["content-type"] == "application/octet-stream"
    assert res.headers["content-disposition"] == 'attachment; filename="weights.bin"'
    folder = post(client, "models", material("models", "m", "model", str(get_context().data_url(P, "material"))))
    refused = client.get(f"/api/v1/-/{P}/models/{folder['id']}/files/download")
    assert refused.status_code == 400 and "is a folder" in refused.json()["message"]
    fn = post(client, "functions", function())
    assert client.get(f"/api/v1/-/{P}/functions/{fn['id']}/files/download").status_code == 400


@pytest.mark.parametrize("where", ["traversal", "outside", "other scheme", "http source"])
def test_a_path_outside_the_data_store_is_refused(
    client: TestClient, tmp_path: Any, http_root: tuple[str, Path], where: str
) -> None:
    """Not even an http(s) source is fetched: whoever may create entities could point one at any address
    this server's network reaches."""
    secret = tmp_path / "secret.txt"
    secret.write_text("a,b\n1,2\n")
    base, served = http_root
    (served / "secret.txt").write_text("a,b\n1,2\n")
    root = get_context().data_root
    path = {"traversal": f"{root}/{P}/../../secret.txt", "outside": str(secret), "other scheme": "s3://b/secret.txt",
            "http source": f"{base}/secret.txt"}[where]  # fmt: skip
    art = post(client, "artifacts", material("artifacts", "leak", "artifact", path))
    res = client.get(f"/api/v1/-/{P}/artifacts/{art['id']}/files/download")
    assert res.status_code == 400 and "1,2" not in res.text, res.text
    message = res.json()["message"]
    assert "refused" in message or "outside" in message or "this server reads its data store only" in message
    di = post(client, "dataitems", material("dataitems", "leak", "table", path))
    preview = client.get(f"/api/v1/-/{P}/dataitems/{di['id']}/preview")
    assert preview.status_code == 400 and "1,2" not in preview.text


def test_data_routes_ask_for_the_same_credentials() -> None:
    with TestClient(create_app(Credentials(token="t0ken"))) as c:
        assert c.get(f"/api/v1/-/{P}/artifacts/x/files/download").status_code == 401
        assert c.get(f"/api/v1/-/{P}/dataitems/x/preview").status_code == 401
