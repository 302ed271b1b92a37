"""The SQL metadata store on SQLite and PostgreSQL: versions, listing, pagination, concurrency."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digitalhub_provider.errors import EntityExistsError, EntityNotFoundError, StoreError
from digitalhub_provider.stores.metadata import open_metadata_store


@pytest.fixture(scope="session")
def rest_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This provider's REST API (standalone, its own process group) over a SQLite store: the
    metadata store over DigitalHub Core's API is tested with the same tests as SQL."""
    import sys

    from tests.servers import free_port, process_group

    tmp = tmp_path_factory.mktemp("rest-store")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALHUB_")}
    env["DIGITALHUB_HOME"] = str(tmp / "home")
    cmd = [sys.executable, "-m", "digitalhub_provider.api", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning"]  # fmt: skip
    with process_group(cmd, port, tmp / "api.log", env=env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(params=["sqlite", "postgresql", "rest"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store holding project ``p`` (and nothing else in it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "rest_url")
        open_metadata_store(url).delete_project("p")  # the server is shared by the session
    open_metadata_store(url).write(create=[("project", PROJECT)])
    return url


PROJECT = {
    "id": "p", "project": "p", "name": "p", "kind": "project", "metadata": {"project": "p", "name": "p"}, "spec": {},
}  # fmt: skip


def _fn(i: int, name: str = "fn", project: str = "p") -> tuple[str, dict]:
    spec = {"python_version": "PYTHON3_11", "code": str(i)}
    return "function", {"id": f"id{i}", "project": project, "name": name, "kind": "python", "spec": spec}


def _run(i: int, fn_name: str, state: str = "COMPLETED") -> tuple[str, dict]:
    return "run", {
        "id": f"run{i}",
        "project": "p",
        "name": f"run{i}",
        "kind": "python+job:run",
        "spec": {"function": f"store://p/function/python/{fn_name}:v1", "task": "store://p/task/python+job/t1"},
        "status": {"state": state},
    }


def test_versions_latest_and_list(store_url: str) -> None:
    store = open_metadata_store(store_url)
    store.write(create=[_fn(1), _fn(2), _fn(3, "other"), _fn(4)])
    assert store.get_latest("p", "function", "fn")["id"] == "id4"
    assert store.get("p", "function", "id2")["spec"]["code"] == "2"
    assert [e["id"] for e in store.list("p", "function")] == ["id4", "id3"]
    assert [e["id"] for e in store.list("p", "function", all_versions=True)] == ["id4", "id3", "id2", "id1"]
    assert [e["id"] for e in store.list("p", "function", name="fn", all_versions=True, limit=2, offset=1)] == [
        "id2",
        "id1",
    ]
    with pytest.raises(EntityNotFoundError):
        store.get("p", "function", "nope")
    with pytest.raises(EntityNotFoundError):
        store.get_latest("p", "function", "nope")
    assert store.delete("p", "function", name="fn") == 3
    assert [e["id"] for e in store.list("p", "function", all_versions=True)] == ["id3"]


def test_runs_by_function_and_state_with_pages(store_url: str) -> None:
    store = open_metadata_store(store_url)
    store.write(create=[_run(i, "a" if i % 2 else "b", "ERROR" if i % 5 == 0 else "COMPLETED") for i in range(40)])
    page = store.list("p", "run", function_name="a", limit=5, offset=5)
    assert [e["id"] for e in page] == [f"run{i}" for i in (29, 27, 25, 23, 21)]
    assert {e["id"] for e in store.list("p", "run", state="ERROR")} == {f"run{i}" for i in range(0, 40, 5)}
    assert store.delete("p", "run", function_name="b", function_ids=["v1"]) == 20


def test_count_and_function_versions_in_keys_and_runtime_references(store_url: str) -> None:
    """DigitalHub Core's SDK points runs at ``python://p/f:ID``, this package at ``store://`` keys:
    both select the function's runs, and one version of it; counts agree with the lists."""
    store = open_metadata_store(store_url)
    runs = [_run(i, "a") for i in range(6)]
    for i, (_, body) in enumerate(runs):
        if i % 2:
            body["spec"]["function"] = f"python://p/a:v{i % 3}"
    store.write(create=runs)
    assert store.count("p", "run") == 6 and store.count("p", "run", function_name="a") == 6
    v1 = {e["id"] for e in store.list("p", "run", function_name="a", function_id="v1")}
    assert v1 == {"run0", "run1", "run2", "run4"}  # even runs: store://...:v1; run1: python://p/a:v1
    assert store.count("p", "run", function_name="a", function_id="v1") == 4
    assert store.count("p", "run", function_name="a", function_id="v2") == 1  # run5
    assert store.count("p", "run", function_name="a", function_id="v9") == 0
    store.write(create=[_fn(1), _fn(2), _fn(3, "other")])
    assert store.count("p", "function") == 2 and store.count("p", "function", all_versions=True) == 3
    assert "p" in [e["name"] for e in store.list(None, "project")] and store.count(None, "project") >= 1
    with pytest.raises(StoreError, match="needs a project"):
        store.list(None, "function")


def test_list_and_delete_filters(store_url: str) -> None:
    store = open_metadata_store(store_url)
    states = ["RUNNING", "ERROR", "COMPLETED", "CREATED"]
    store.write(create=[_run(i, "a", states[i % 4]) for i in range(12)])
    unfinished = store.list("p", "run", function_name="a", state=["RUNNING", "CREATED"])
    assert [e["id"] for e in unfinished] == [f"run{i}" for i in (11, 8, 7, 4, 3, 0)]
    assert store.list("p", "run", state=[]) == []
    assert [e["id"] for e in store.list("p", "run", offset=9)] == ["run2", "run1", "run0"]  # no limit
    assert [e["id"] for e in store.list("p", "run", kind="python+job:run", limit=2)] == ["run11", "run10"]
    assert store.list("p", "run", name="run5") == [store.get("p", "run", "run5")]
    assert store.delete("p", "run", ids=["run1", "run2", "nope"]) == 2
    assert store.delete("p", "run", ids=[]) == 0
    assert store.delete_project("p") == 11  # the 10 runs and the project
    assert store.list("p", "run") == []


def test_runs_by_labels_exact_all_of_them_and_paged(store_url: str) -> None:
    """``labels`` keeps the entities whose ``metadata.labels`` hold every label given, each an exact element:
    not a label it only starts (``t`` in ``t2``), not the same text elsewhere in the body; pages and counts
    are of the matches."""
    store = open_metadata_store(store_url)
    runs = []
    for i in range(12):
        _, body = _run(i, "a")
        task = "airflow.task_id=t" if i % 2 else "airflow.task_id=t2"
        body["metadata"] = {"labels": ["airflow.dag_id=d", task, *(["airflow.map_index=0"] if i % 3 == 0 else [])]}
        runs.append(("run", body))
    _, elsewhere = _run(12, "a")  # the text in its parameters, not in its labels
    elsewhere["spec"]["parameters"] = {"label": "airflow.task_id=t"}
    elsewhere["metadata"] = {"labels": ["airflow.dag_id=d"], "name": "airflow.task_id=t"}
    _, other_dag = _run(13, "a")
    other_dag["metadata"] = {"labels": ["airflow.dag_id=d2", "airflow.task_id=t"]}
    store.write(create=[*runs, ("run", elsewhere), ("run", other_dag)])

    def ids(**kw: Any) -> list[str]:
        return [e["id"] for e in store.list("p", "run", **kw)]

    assert ids(labels=["airflow.task_id=t"]) == [f"run{i}" for i in (13, 11, 9, 7, 5, 3, 1)]
    both = ["airflow.dag_id=d", "airflow.task_id=t"]
    assert ids(labels=both) == [f"run{i}" for i in (11, 9, 7, 5, 3, 1)]
    assert store.count("p", "run", labels=both) == 6
    assert ids(labels=both, limit=2, offset=2) == ["run7", "run5"]  # the matches' page, not the table's
    assert ids(labels=both, limit=4, offset=4) == ["run3", "run1"]
    assert ids(labels=[*both, "airflow.map_index=0"]) == ["run9", "run3"]
    assert ids(labels=["airflow.task_id=t2"], limit=3) == ["run10", "run8", "run6"]
    assert store.count("p", "run", labels=["airflow.task_id=t2"]) == 6
    for partial in ("airflow.task_id=", "airflow.task_id", "airflow.dag_id=", "d"):
        assert ids(labels=[partial]) == [] and store.count("p", "run", labels=[partial]) == 0, partial
    assert ids(labels=["airflow.dag_id=d2", "airflow.dag_id=d"]) == []
    assert ids(labels=["airflow.dag_id=d"], state="COMPLETED", function_name="a", limit=1) == ["run12"]
    assert len(ids(labels=[])) == 14  # no label asked: no filter


def test_statements_match_the_migrated_schema() -> None:
    """The store's SQL text names the table and columns Alembic creates from ``schema.entities``."""
    from digitalhub_provider.stores.metadata import sql
    from digitalhub_provider.stores.metadata.schema import entities

    assert entities.name == sql.TABLE
    assert [c.name for c in entities.columns] == ["pk", *sql.COLUMNS]
    assert set(sql.UPDATED) | set(sql.FILTERS) <= set(sql.COLUMNS)


def test_write_is_all_or_nothing(store_url: str) -> None:
    store = open_metadata_store(store_url)
    store.write(create=[_fn(1)])
    with pytest.raises(EntityExistsError, match=r"already in the metadata store|Duplicated entity"):
        store.write(create=[_fn(2), _fn(1)])  # duplicate id: the whole transaction rolls back
    assert [e["id"] for e in store.list("p", "function", all_versions=True)] == ["id1"]
    with pytest.raises(EntityNotFoundError):
        store.write(create=[_fn(5)], update=[_fn(99)])
    assert [e["id"] for e in store.list("p", "function", all_versions=True)] == ["id1"]


def _save_versions(url: str, worker: int, count: int) -> None:
    os.environ["DIGITALHUB_METADATA_URL"] = url
    import digitalhub_provider as dh

    for i in range(count):
        dh.new_function(
            project="p",
            name="shared",
            kind="python",
            python_version="PYTHON3_11",
            code=f"# worker {worker} version {i}",
            handler="h",
        )


def test_processes_saving_versions_at_once_lose_nothing(store_url: str, tmp_path: Path) -> None:
    workers, count = 4, 15
    mp = multiprocessing.get_context("spawn")
    procs = [mp.Process(target=_save_versions, args=(store_url, w, count)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    store = open_metadata_store(store_url)
    versions = store.list("p", "function", name="shared", all_versions=True)
    assert len(versions) == workers * count
    assert len({v["id"] for v in versions}) == workers * count
    assert {v["spec"]["code"] for v in versions} == {
        f"# worker {w} version {i}" for w in range(workers) for i in range(count)
    }


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    from digitalhub_provider.stores.metadata.connections import sqlite_transaction

    store = open_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
    store.write(create=[_fn(1)])
    with sqlite3.connect(tmp_path / "m.db") as conn:  # the mode is the file's
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with sqlite_transaction(str(tmp_path / "m.db"), write=False, where="test") as tx:  # the store's own connection
        assert tx.rows("PRAGMA busy_timeout", {}) == [(60000,)]


def test_sqlite_store_must_be_a_file(tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///x.db?mode=ro"):
        with pytest.raises(StoreError, match="must be a file"):
            open_metadata_store(url)
    (tmp_path / "plain-file").write_text("not a folder")
    with pytest.raises(StoreError, match=r"cannot open the metadata store .*plain-file/m\.db"):
        open_metadata_store(f"sqlite:///{tmp_path / 'plain-file' / 'm.db'}")


def test_store_in_a_forked_child_opens_its_own_sqlite_connection(tmp_path: Path) -> None:
    """A connection inherited through fork is the parent's: the child opens its own, the parent's
    keeps working (SQLite forbids using a connection across fork)."""
    store = open_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
    store.write(create=[_fn(1)])
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            child = open_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
            child.write(create=[_fn(2)])
            code = 0 if child.get_latest("p", "function", "fn")["id"] == "id2" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.write(create=[_fn(3)])
    assert [e["id"] for e in store.list("p", "function", all_versions=True)] == ["id3", "id2", "id1"]


def test_unreachable_or_unknown_store_is_a_clear_error() -> None:
    with pytest.raises(
        StoreError, match=r"cannot open the metadata store postgresql\+psycopg2://u:\*\*\*@127\.0\.0\.1:1/x"
    ):
        open_metadata_store("postgresql+psycopg2://u:secret@127.0.0.1:1/x")
    with pytest.raises(StoreError, match="unsupported metadata store URL"):
        open_metadata_store("mongodb://x")


def test_a_guarded_write_refuses_a_state_another_writer_changed(store_url: str) -> None:
    """``expect`` holds an update to the state its writer last saw: nothing of the write lands otherwise."""
    from digitalhub_provider.errors import StateChangedError

    store = open_metadata_store(store_url)
    store.write(create=[_fn(1), _run(1, "fn", state="RUNNING")])
    stopped = {**_run(1, "fn", state="STOPPED")[1]}
    store.write(update=[("run", stopped)], expect={"run1": "RUNNING"})
    late = {**_run(1, "fn", state="COMPLETED")[1]}
    with pytest.raises(StateChangedError, match="run run1 is STOPPED in the store, not RUNNING"):
        store.write(create=[_fn(2, name="output")], update=[("run", late)], expect={"run1": "RUNNING"})
    assert store.get("p", "run", "run1")["status"]["state"] == "STOPPED"
    with pytest.raises(EntityNotFoundError):
        store.get("p", "function", "id2")  # the create of the refused write was rolled back


def test_a_store_whose_migrations_are_missing_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without the migrations' files (a wheel that lost them) fails at once, naming the cause,
    instead of later with 'no such table'."""
    import shutil

    from digitalhub_provider.stores.metadata import sql

    broken = tmp_path / "migrations"
    shutil.copytree(sql.MIGRATIONS, broken, ignore=shutil.ignore_patterns("versions", "__pycache__"))
    monkeypatch.setattr(sql, "MIGRATIONS", broken)
    with pytest.raises(StoreError, match=r"reach revision None, this version needs '0002' \(is the package"):
        open_metadata_store(f"sqlite:///{tmp_path / 'meta.db'}")


def test_the_sdk_records_a_whole_run_through_the_rest_store(
    rest_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``metadata_url`` a DigitalHub Core API: a function, its run (every state, its output dataitem
    and result) recorded through the REST API, readable there as DigitalHub Core's SDK reads them."""
    import httpx

    import digitalhub_provider as dh
    from digitalhub_provider.sdk.context import reset_context

    open_metadata_store(rest_url).delete_project("rest-sdk")
    monkeypatch.setenv("DIGITALHUB_METADATA_URL", rest_url)
    monkeypatch.setenv("DIGITALHUB_DATA_URL", f"file://{tmp_path / 'data'}")
    reset_context()
    dh.get_or_create_project("rest-sdk")
    code = "import pandas as pd\n\ndef h(n):\n    return pd.DataFrame({'i': list(range(n))}), n * 2\n"
    fn = dh.new_function(project="rest-sdk", name="f", kind="python", code=code, handler="h",
                         python_version="PYTHON3_11")  # fmt: skip
    run = fn.run(action="job", parameters={"n": 3}, outputs=["table", "double"], local_execution=True)
    assert run.status.state == "COMPLETED", run.status.message
    assert run.result("double") == 6 and len(run.output("table").as_df()) == 3
    remote = httpx.get(f"{rest_url}/api/v1/-/rest-sdk/runs/{run.id}").json()
    assert remote["status"]["state"] == "COMPLETED" and remote["spec"]["local_execution"] is True
    timeline = [t["status"] for t in remote["status"]["transitions"]]
    assert timeline == ["CREATED", "BUILT", "READY", "RUNNING", "COMPLETED"]
    page = httpx.get(f"{rest_url}/api/v1/-/rest-sdk/dataitems", params={"name": "table"}).json()
    assert [d["id"] for d in page["content"]] == [run.output("table").id]
    reset_context()


def test_the_rest_store_sends_the_connections_token_and_never_shows_it(tmp_path: Path) -> None:
    from digitalhub_provider.config import with_password, without_password
    from tests.dhcore_sdk import api_server
    from tests.servers import free_port

    token = "tok-" + "9" * 20
    with api_server(tmp_path, token=token) as url:
        good = open_metadata_store(with_password(url, token))
        good.write(create=[("project", PROJECT)])
        assert good.get("p", "project", "p")["name"] == "p"
        bad = open_metadata_store(with_password(url, "wrong-token"))
        with pytest.raises(StoreError, match="refused the credentials") as refused:
            bad.get("p", "project", "p")
        assert "wrong-token" not in str(refused.value) and token not in repr(good)
        assert without_password(with_password(url, token)) == (url, token)
    with pytest.raises(StoreError, match=r"cannot reach the metadata store http://127\.0\.0\.1"):
        open_metadata_store(f"http://127.0.0.1:{free_port()}").get("p", "project", "p")
