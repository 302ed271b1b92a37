"""Runs nobody follows any more are finished from the evidence: the caller killed while its runner
lives (COMPLETED from the RunResult, log intact), both killed (ERROR "runner lost"), Ctrl-C (STOPPED,
runner gone), the handler's child processes ended with the run, the reconcile command and the
operators' retry (a RunResult of the earlier try stands)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import digitalhub_provider as dh
from digitalhub_provider.entities import Run, State
from digitalhub_provider.launchers import processes
from digitalhub_provider.runtimes.contract import RESULT_FILE, RunResult
from digitalhub_provider.sdk.context import get_context
from digitalhub_provider.sdk.controller import RunController
from tests.runs import running_run

PY = {"kind": "python", "python_version": "PYTHON3_11"}
CODE = """
import os, subprocess, sys, time
from pathlib import Path


def gated(gate):
    print("waiting for the gate", flush=True)
    while not Path(gate).exists():
        time.sleep(0.05)
    print("through the gate", flush=True)
    return 42


def half_written(project, gate):
    # As an upload in progress leaves it: the entity's folder journaled, a temporary file half written.
    url = project.ctx.material_url("demo", "dataitem", "half", "0123456789abcdef0123456789abcdef", "data.parquet")
    path = project.ctx.data_store(url).local_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name(".data.parquet.tmp").write_bytes(b"PAR1" + bytes(4096))
    print("half written", flush=True)
    while not Path(gate).exists():
        time.sleep(0.05)


def spawner(pidfile):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    Path(pidfile).write_text(str(child.pid))
    return "spawned"
"""
CALLER = """
import sys
import digitalhub_provider as dh
fn = dh.get_function(sys.argv[2], project="demo")
fn.run(action="job", parameters={"gate": sys.argv[1]}, wait=True)
"""


def _function(name: str) -> Any:
    return dh.new_function(project="demo", name=name, code=CODE, handler=name, **PY)


@pytest.fixture
def caller(tmp_path: Path) -> Iterator[Any]:
    """Start ``fn.run()`` in another Python process (its own process group); every group it or its
    runner made is killed at the end."""
    groups: list[int] = []

    def start(gate: Path, name: str = "gated") -> tuple[subprocess.Popen[bytes], Run]:
        script = tmp_path / "caller.py"
        script.write_text(CALLER)
        proc = subprocess.Popen(
            [sys.executable, str(script), str(gate), name],
            # Ctrl-C as a terminal delivers it: a disposition the test process inherited (SIG_IGN) is not passed on
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        groups.append(proc.pid)
        run = _wait_for(lambda: _running(name))
        groups.append(int(run.status.get("pid")))
        return proc, run

    yield start
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _running(name: str) -> Run | None:
    runs = [r for r in dh.list_runs("demo") if r.spec.get("function", "").split("/")[-1].startswith(f"{name}:")]
    return next((r for r in runs if r.state == State.RUNNING.value and r.status.get("pid")), None)


def _wait_for(check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout} s")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_a_run_whose_caller_was_killed_completes_from_its_result(caller: Any, tmp_path: Path) -> None:
    _function("gated")
    gate = tmp_path / "gate"
    proc, run = caller(gate)
    _kill(proc)  # the caller only: the runner is in its own process group
    assert run.refresh().state == State.RUNNING.value  # its runner still runs: nothing to decide yet
    gate.touch()
    run.wait(timeout=120)
    assert run.state == State.COMPLETED.value, run.status.get("message")
    assert run.results() == {"output": 42}
    assert "through the gate" in run.logs()  # written after the caller was gone
    assert not processes.group_alive(int(run.status.get("pid")))


def test_a_run_whose_caller_and_runner_were_killed_ends_runner_lost(caller: Any, tmp_path: Path) -> None:
    _function("gated")
    proc, run = caller(tmp_path / "gate")
    _kill(proc)
    os.killpg(int(run.status.get("pid")), signal.SIGKILL)
    _wait_for(lambda: not processes.group_alive(int(run.status.get("pid"))), timeout=10)
    run.refresh()
    assert run.state == State.ERROR.value
    assert run.status.get("message").startswith("runner lost: the runner process")
    assert str(run.status.get("pid")) in run.status.get("message")
    assert dh.get_run(run.key).state == State.ERROR.value


def test_a_runner_killed_mid_upload_leaves_no_half_written_file(caller: Any, tmp_path: Path) -> None:
    """The runner journals an entity's folder before writing it: killed mid-write (with its caller),
    its run ends "runner lost" and the folder, temporary file and all, is removed."""
    _function("half_written")
    proc, run = caller(tmp_path / "gate", "half_written")
    ctx = get_context()
    folder = ctx.data_store(ctx.data_root).local_path(ctx.data_url("demo", "dataitem", "half"))
    _wait_for(lambda: "half written" in run.logs())
    assert [p.name for p in folder.rglob("*") if p.is_file()] == [".data.parquet.tmp"]
    _kill(proc)
    os.killpg(int(run.status.get("pid")), signal.SIGKILL)
    _wait_for(lambda: not processes.group_alive(int(run.status.get("pid"))), timeout=10)
    assert run.refresh().state == State.ERROR.value
    assert run.status.get("message").startswith("runner lost: the runner process")
    assert not folder.exists()  # nor the folders above it, left empty
    assert not folder.parent.exists()


def test_a_forged_journal_removes_no_registered_entity_nor_anything_outside_the_project(tmp_path: Path) -> None:
    """writing.json is the runner's, so the user's: the controller removes only unregistered entity
    folders of the run's own project under the data store's root."""
    from digitalhub_provider.runtimes.contract import WRITING_FILE

    fn = _function("gated")
    kept = dh.log_artifact(project="demo", name="kept", source=str(_file(tmp_path / "kept.txt")))
    run = _stale_run(fn)
    ctx = get_context()
    other = ctx.data_url("other", "dataitem", "x", "0123456789abcdef0123456789abcdef", "")
    ctx.data_store(other).write_bytes(other + "f.txt", b"another project's")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the data store's")
    journal = [ctx.data_url("demo", "artifact", "kept", kept.id, ""), other, outside.as_uri() + "/",
               ctx.data_root.rstrip("/") + "/demo/artifact/kept/../../../", "not a list item"]  # fmt: skip
    url = ctx.run_url(run.id, WRITING_FILE)
    ctx.data_store(url).write_bytes(url, json.dumps(journal).encode())
    RunController(ctx).reconcile(run, follower_gone="its task instance is gone")
    assert dh.get_run(run.key).state == State.ERROR.value
    assert ctx.data_store(kept.path).read_bytes(kept.path) == b"kept"
    assert ctx.data_store(other).exists(other + "f.txt") and outside.exists()


def _file(path: Path) -> Path:
    path.write_text("kept")
    return path


def test_ctrl_c_in_function_run_stops_the_run_and_its_runner(caller: Any, tmp_path: Path) -> None:
    _function("gated")
    proc, run = caller(tmp_path / "gate")
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(60) != 0
    stored = dh.get_run(run.key)
    assert stored.state == State.STOPPED.value
    assert "Ctrl-C" in stored.status.get("message")
    assert not processes.group_alive(int(run.status.get("pid")))


def test_a_run_followed_by_this_process_is_left_to_it(tmp_path: Path) -> None:
    fn = _function("gated")
    gate = tmp_path / "gate"
    run = fn.run(action="job", parameters={"gate": str(gate)}, wait=False)
    try:
        assert run.refresh().state == State.RUNNING.value
        assert RunController(get_context()).reconcile_unfinished("demo") == {"unfinished": 1}
    finally:
        gate.touch()
    assert run.wait(timeout=120).state == State.COMPLETED.value


def test_the_handlers_child_processes_end_with_the_run(tmp_path: Path) -> None:
    fn = _function("spawner")
    pidfile = tmp_path / "child.pid"
    run = fn.run(action="job", parameters={"pidfile": str(pidfile)})
    assert run.state == State.COMPLETED.value, run.status.get("message")
    child = int(pidfile.read_text())
    assert processes.alive({"host": socket.gethostname(), "pid": child}) is False


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _stale_run(fn: Any, **status: Any) -> Run:
    """RUNNING, as a caller that was killed leaves it: a local runner that is gone, a follower that is gone."""
    dead = {"host": socket.gethostname(), "pid": _dead_pid(), "started": 1}
    return running_run(
        get_context(),
        fn,
        status={"launcher": "local", "host": socket.gethostname(), "pid": _dead_pid(), "follower": dead, **status},
    )


def _write_result(run: Run, **fields: Any) -> None:
    ctx = get_context()
    url = ctx.run_url(run.id, RESULT_FILE)
    ctx.data_store(url).write_bytes(url, RunResult(run_id=run.id, **fields).to_json())


def test_the_reconcile_command_finishes_every_stale_run(tmp_path: Path) -> None:
    fn = _function("gated")
    with_result = _stale_run(fn)
    _write_result(with_result, state="COMPLETED", results={"answer": 7})
    lost = _stale_run(fn)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["digitalhub", "runs", "reconcile"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"unfinished": 2, "COMPLETED": 1, "ERROR": 1}
    assert dh.get_run(with_result.key).results() == {"answer": 7}
    assert dh.get_run(lost.key).status.get("message").startswith("runner lost: the runner process")


def test_the_reconcile_command_refuses_bad_usage_and_names_a_missing_connection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from digitalhub_provider.cli import main

    with pytest.raises(SystemExit) as usage:
        main(["runs"])
    assert usage.value.code == 2
    assert main(["runs", "reconcile", "--conn-id", "no_such_connection"]) == 1
    assert "no_such_connection" in capsys.readouterr().err


def test_a_process_given_the_runners_pid_since_is_not_taken_for_it() -> None:
    me = processes.identity()
    assert processes.alive(me) is True
    assert processes.alive({**me, "started": (me["started"] or 0) + 1}) is False
    assert processes.alive({**me, "host": "another-host"}) is None


def test_an_earlier_result_wins_over_a_second_finish_and_keeps_its_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes finishing one run from its one RunResult: the loser removes nothing."""
    fn = _function("gated")
    run = _stale_run(fn)
    ctx = get_context()
    url = ctx.data_url("demo", "artifact", "kept", "a1", "kept.bin")
    ctx.data_store(url).write_bytes(url, b"registered by the winner")
    entity = dh.Artifact.build(project="demo", name="kept", kind="artifact", spec={"path": url}).to_dict()
    _write_result(run, state="COMPLETED", outputs={"kept": {"type": "artifact", "entity": entity}})
    late = Run.from_dict(run.to_dict(), ctx)  # a second follower's view: still RUNNING
    RunController(ctx).reconcile(run)
    assert run.state == State.COMPLETED.value, run.status.get("message")
    second = RunController(ctx)
    # It read the stored state just before the first one's write: it goes on to write and loses.
    monkeypatch.setattr(second, "_reload_state", lambda _run: State.RUNNING.value)
    second.finish(late, exit_code=0)
    assert late.state == State.COMPLETED.value
    assert ctx.data_store(url).exists(url)


@pytest.mark.leaves_unfinished_runs  # the run of another host's runner is left, as it must be
def test_the_maintenance_dag_ends_runs_whose_airflow_task_instance_is_gone(
    airflow_db: str, request: pytest.FixtureRequest
) -> None:
    """Under dag.test(): a run that ran in the process of a task instance Airflow no longer has, or in a
    local runner beside it (on another host, where no process can be checked), ends ERROR; one not started by an
    Airflow task, on another host, is left; the counts come back as the task's XCom."""
    from tests.airflow_helpers import load_dag, task_states, xcoms

    fn = _function("gated")
    elsewhere = {"host": "another-host", "pid": 4242, "started": 1}
    labels = ["airflow.dag_id=gone_dag", "airflow.run_id=manual__x", "airflow.task_id=t", "airflow.map_index=-1"]
    ti_gone = running_run(get_context(), fn, labels=labels, status={"launcher": "in-process", "follower": elsewhere})
    unknown = running_run(get_context(), fn, status={"launcher": "in-process", "follower": elsewhere})
    local_labels = [lab.replace("task_id=t", "task_id=local") for lab in labels]
    runner = {"launcher": "local", "host": "another-host", "pid": 4343, "started": 1}
    local = running_run(get_context(), fn, labels=local_labels, status={**runner, "follower": elsewhere})
    orphan_labels = [lab.replace("task_id=t", "task_id=orphan") for lab in labels]
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)  # a runner left by a dead worker
    request.addfinalizer(sleeper.kill)
    here = {"launcher": "local", **processes.identity(sleeper.pid)}
    orphan = running_run(get_context(), fn, labels=orphan_labels, status={**here, "follower": elsewhere})
    dag = load_dag("digitalhub_maintenance.py")
    dr = dag.test()
    assert task_states(dr) == {"reconcile_runs": "success"}
    assert xcoms("digitalhub_maintenance", dr.run_id)[("reconcile_runs", "return_value")] == {
        "unfinished": 4,
        "ERROR": 3,
    }
    ended = dh.get_run(ti_gone.key)
    assert ended.state == "ERROR"
    assert ended.status.get("message") == (
        "runner lost: its Airflow task instance gone_dag/manual__x/t is gone, and it ran in that task's process "
        "without writing a result"
    )
    assert dh.get_run(unknown.key).state == "RUNNING"
    assert dh.get_run(local.key).status.get("message") == (
        "runner lost: its Airflow task instance gone_dag/manual__x/local is gone, and its runner process 4343 on "
        "another-host cannot be checked from here"
    )
    assert dh.get_run(orphan.key).status.get("message") == (
        f"runner lost: its Airflow task instance gone_dag/manual__x/orphan is gone; its runner process {sleeper.pid}, "
        "left running, was killed"
    )
    assert sleeper.wait(10) in (-signal.SIGTERM, -signal.SIGKILL)  # its group ended
