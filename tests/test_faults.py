"""Faults injected into real servers and processes, and survived: the S3 server gone while a run writes its
outputs (run ERROR, nothing registered, the next try after it is back succeeds), PostgreSQL restarted while
a run runs (the run finishes: the store reconnects), the runner SIGKILLed after writing its RunResult (the
RunResult decides), and a metadata store at the previous schema migrated with its data intact."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest

import digitalhub_provider as dh
from digitalhub_provider.entities import State
from digitalhub_provider.sdk.context import get_context, reset_context
from tests.servers import free_port, postgres, process_group

PY = {"kind": "python", "python_version": "PYTHON3_11"}


def _bucket(endpoint: str, name: str) -> None:
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)


@pytest.mark.s3
def test_the_s3_server_gone_while_a_run_writes_its_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler takes the S3 server down (its process group) just before it returns a DataFrame."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    for name, value in {
        "DIGITALHUB_DATA_URL": "s3://faults/data",
        "DIGITALHUB_S3_ENDPOINT_URL": endpoint,
        "DIGITALHUB_S3_ACCESS_KEY_ID": "testing",
        "DIGITALHUB_S3_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    reset_context()
    code = (
        "import os, signal\nimport pandas as pd\n\n"
        "def table(pgid=0):\n"
        "    if pgid:\n"
        "        os.killpg(pgid, signal.SIGKILL)\n"
        "    return pd.DataFrame({'a': [1, 2, 3]})\n"
    )
    with process_group(moto, port, tmp_path / "moto-1.log") as server:
        _bucket(endpoint, "faults")
        fn = dh.new_function(project="demo", name="table", code=code, handler="table", **PY)
        run = fn.run(action="job", parameters={"pgid": server.pid}, outputs=["table"])
    assert run.state == State.ERROR.value
    assert "S3 endpoint http://127.0.0.1:" in run.status.message and "does not answer" in run.status.message
    assert dh.list_dataitems("demo") == []  # nothing registered
    with process_group(moto, port, tmp_path / "moto-2.log"):  # back (empty: moto keeps nothing)
        _bucket(endpoint, "faults")
        again = fn.run(action="job", outputs=["table"])
        assert again.state == State.COMPLETED.value, again.status.message
        assert again.output("table").as_df()["a"].tolist() == [1, 2, 3]
    assert dh.get_run(run.key).state == State.ERROR.value


@pytest.mark.postgres
def test_postgresql_restarted_while_a_run_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = tmp_path / "gate"
    code = (
        "import time\nfrom pathlib import Path\n\n"
        "def hold(gate):\n"
        "    while not Path(gate).exists():\n"
        "        time.sleep(0.05)\n"
        "    return 'after the restart'\n"
    )
    with postgres(tmp_path) as server:
        monkeypatch.setenv("DIGITALHUB_METADATA_URL", server.url)
        reset_context()
        fn = dh.new_function(project="demo", name="hold", code=code, handler="hold", **PY)
        run = fn.run(action="job", parameters={"gate": str(gate)}, wait=False)
        assert dh.get_run(run.key).state == State.RUNNING.value  # the pool holds connections to the first server
        server.restart()
        gate.touch()
        run.wait(timeout=120)
        assert run.state == State.COMPLETED.value, run.status.message
        assert run.results() == {"output": "after the restart"}
        assert dh.get_run(run.key).state == State.COMPLETED.value
        reset_context()


def test_a_runner_killed_after_writing_its_result_is_decided_by_it(dh_home: Path) -> None:
    """SIGKILL between the RunResult and the runner's exit (a thread of the handler watches for the new
    result file, then kills its own process): the exit code says killed, the RunResult says COMPLETED,
    and the RunResult decides."""
    code = (
        "import os, signal, threading, time\nfrom pathlib import Path\n\n"
        "def answer():\n"
        "    runs = Path(os.environ['DIGITALHUB_DATA_URL']) / 'runs'\n"
        "    before = set(runs.glob('*/result.json'))\n"
        "    def kill_when_written():\n"
        "        while not set(runs.glob('*/result.json')) - before:\n"
        "            time.sleep(0.005)\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    threading.Thread(target=kill_when_written, daemon=True).start()\n"
        "    return 42\n"
    )
    fn = dh.new_function(project="demo", name="answer", code=code, handler="answer", **PY)
    run = fn.run(action="job")
    assert run.state == State.COMPLETED.value, run.status.message
    assert run.results() == {"output": 42}
    assert "killed by signal 9" not in (run.status.message or "")


def test_a_store_at_the_previous_schema_migrates_with_its_data_intact(dh_home: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from digitalhub_provider.stores.metadata import connections, sql
    from digitalhub_provider.stores.metadata.sql import HEAD, MIGRATIONS

    fn = dh.new_function(project="demo", name="f", code="def h():\n    return 1\n", handler="h", **PY)
    runs = [fn.run(action="job") for _ in range(3)]
    url = get_context().settings.metadata_url
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with connections.engine(url).connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")  # the schema the previous release created
        conn.commit()
    assert connections.sqlite_revision(connections.sqlite_path(url), url) == "0001"
    sql._ready.discard(url)  # as a new process of this release finds it
    reset_context()
    listed = get_context().metadata.list("demo", "run", function_name="f", function_id=fn.id)  # migrates first
    assert connections.sqlite_revision(connections.sqlite_path(url), url) == HEAD
    assert sorted(r["id"] for r in listed) == sorted(r.id for r in runs)
    assert [r.results() for r in dh.list_runs("demo")] == [{"output": 1}] * 3
    assert dh.get_function("f", project="demo").to_dict() == fn.to_dict()
