"""The run controller: its transition table, the one writer of run status, stops racing a start or a finish."""

from __future__ import annotations

import itertools
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import digitalhub_provider as dh
from digitalhub_provider.entities import Run, State
from digitalhub_provider.errors import IllegalTransitionError, StateChangedError
from digitalhub_provider.launchers.local import LocalLauncher, LocalProcess
from digitalhub_provider.sdk.context import get_context
from digitalhub_provider.sdk.controller import TRANSITIONS, RunController

PY = {"kind": "python", "python_version": "PYTHON3_11"}
CODE = """
import time
import pandas as pd
from digitalhub_provider import handler


@handler(outputs=["table"])
def table():
    return pd.DataFrame({"a": [1, 2, 3]})


def slow():
    print("sleeping", flush=True)
    time.sleep(60)
"""
PACKAGE = Path(__file__).resolve().parent.parent / "digitalhub_provider"


def _function(handler: str) -> Any:
    return dh.new_function(project="demo", name=handler, code=CODE, handler=handler, **PY)


def _stored(run: Run) -> str:
    return str(dh.get_run(run.key).status.state)


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_table_allows_digitalhub_s_order_and_nothing_out_of_a_final_state() -> None:
    order = [State.CREATED, State.BUILT, State.READY, State.RUNNING, State.COMPLETED]
    for current, following in itertools.pairwise(order):
        assert following in TRANSITIONS[current]
    for state in State:
        assert (TRANSITIONS[state] == frozenset()) is state.final
        assert state.final or {State.ERROR, State.STOPPED} <= TRANSITIONS[state]


@pytest.mark.leaves_unfinished_runs  # each path stops short of a final state
@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), State.RUNNING),  # CREATED -> RUNNING skips BUILT and READY
        ((), State.COMPLETED),
        ((State.BUILT, State.READY, State.RUNNING), State.READY),  # a run is READY once
        ((State.BUILT, State.READY, State.RUNNING, State.COMPLETED), State.RUNNING),
        ((State.STOPPED,), State.ERROR),
    ],
)
def test_an_illegal_transition_is_refused_and_nothing_is_stored(path: tuple[State, ...], illegal: State) -> None:
    ctx = get_context()
    controller = RunController(ctx)
    run = controller.create(_function("table"))
    for state in path:
        controller.transition(run, state)
    before = dh.get_run(run.key).to_dict()
    with pytest.raises(IllegalTransitionError, match=f"cannot go from {run.state} to {illegal.value}"):
        controller.transition(run, illegal)
    assert dh.get_run(run.key).to_dict() == before
    assert run.state == (path[-1].value if path else "CREATED")


def test_a_write_never_overwrites_a_state_another_process_set() -> None:
    ctx = get_context()
    controller = RunController(ctx)
    run = controller.create(_function("table"))
    controller.transition(run, State.BUILT)
    other = dh.get_run(run.key)  # another process's view: it stops the run
    RunController(ctx).stop(other)
    with pytest.raises(StateChangedError, match="is STOPPED in the store, not BUILT"):
        controller.transition(run, State.READY)
    assert _stored(run) == "STOPPED"
    controller.record(run, note="x")  # a status field learnt late is dropped, the stop stands
    assert run.state == "STOPPED" and dh.get_run(run.key).status.get("note") is None


class _StoppedWhileReady(LocalLauncher):
    """A stop that lands while the run is READY and its runner is being started."""

    def start(self, spec: Any, run: Run, ctx: Any) -> LocalProcess:
        RunController(ctx).stop(dh.get_run(run.key), "stopped while READY")
        self.process = super().start(spec, run, ctx)
        return self.process


def test_stop_while_ready_kills_the_runner_just_started_and_the_run_stays_stopped(dh_home: Path) -> None:
    ctx = get_context()
    controller = RunController(ctx)
    fn = _function("slow")
    run = controller.create(fn)
    launcher = _StoppedWhileReady(on_line=lambda line: None)
    assert controller.submit(fn, run, launcher) is None
    assert run.state == "STOPPED" and run.status.message == "stopped while READY"
    assert [t["status"] for t in dh.get_run(run.key).status.transitions] == ["CREATED", "BUILT", "READY", "STOPPED"]
    launcher.process.wait(timeout=30)
    assert not _alive(launcher.process.pid)


def test_stop_while_running_kills_the_process_group_and_leaves_no_output(dh_home: Path) -> None:
    run = _function("slow").run(action="job", wait=False, on_log=lambda line: None)
    deadline = time.monotonic() + 60
    while "sleeping" not in run.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(dh.get_run(run.key).status.get("pid"))
    run.stop()
    run.wait(timeout=30)
    assert (run.state, run.status.message) == ("STOPPED", "stopped by request")
    assert not _alive(pid)
    assert _files_under(dh_home / "data" / "demo") == []


class _StoppedWhileOutputsUpload(LocalLauncher):
    """The stop lands after the runner wrote its outputs and result, before the controller registers them."""

    def start(self, spec: Any, run: Run, ctx: Any) -> LocalProcess:
        process = super().start(spec, run, ctx)
        wait = process.wait

        def wait_then_stop(timeout: float | None = None) -> int:
            code = wait(timeout)
            RunController(ctx).stop(dh.get_run(run.key), "stopped while its outputs were uploaded")
            return code

        process.wait = wait_then_stop  # type: ignore[method-assign]
        return process


def test_stop_while_outputs_upload_removes_them_and_registers_nothing(dh_home: Path) -> None:
    ctx = get_context()
    controller = RunController(ctx)
    fn = _function("table")
    run = controller.execute(fn, controller.create(fn), _StoppedWhileOutputsUpload(on_line=lambda line: None))
    assert run.state == "STOPPED" and _stored(run) == "STOPPED"
    assert dh.list_dataitems("demo") == []
    assert _files_under(dh_home / "data" / "demo") == []
    assert not (dh_home / "data" / "demo" / "dataitem").exists()  # nor the output's empty folders


def test_a_runner_killed_with_sigkill_ends_error(dh_home: Path) -> None:
    run = _function("slow").run(action="job", wait=False, on_log=lambda line: None)
    deadline = time.monotonic() + 60
    while "sleeping" not in run.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(int(dh.get_run(run.key).status.get("pid")), signal.SIGKILL)
    run.wait(timeout=30)
    assert run.state == "ERROR"
    assert run.status.message == "the runner was killed by signal 9 before writing a result"


def test_the_controller_is_the_only_writer_of_run_status() -> None:
    """No module but the controller sets a run's state or saves a run (``("run", ...)`` in a write or
    an insert of the metadata store)."""
    writers = re.compile(r'status\.state\s*=(?!=)|\.write\([^)]*\("run"|insert\("run"|set_state\(')
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "controller.py" and path.parent.name == "sdk":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if writers.search(line):
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert found == []


def test_every_state_string_in_the_package_is_a_state_member() -> None:
    """Run states are named through ``State`` everywhere but in its own module (a logging level that
    happens to be called ERROR is not a run state)."""
    bare = re.compile(r'(?<![\w"])"(CREATED|BUILT|READY|RUNNING|COMPLETED|ERROR|STOPPED)"(?!:)')  # not KFP's keys
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() == "states.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if bare.search(line) and "set_logger_level" not in line:
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert found == []


def test_stop_while_ready_in_process_never_runs_the_handler(dh_home: Path) -> None:
    from digitalhub_provider.launchers.in_process import InProcessLauncher, InProcessRun

    class StoppedWhileReady(InProcessLauncher):
        def start(self, spec: Any, run: Run, ctx: Any) -> InProcessRun:
            RunController(ctx).stop(dh.get_run(run.key), "stopped while READY")
            return super().start(spec, run, ctx)

    ctx = get_context()
    controller = RunController(ctx)
    fn = _function("table")
    run = controller.execute(fn, controller.create(fn), StoppedWhileReady())
    assert run.state == "STOPPED" and _stored(run) == "STOPPED"
    assert dh.list_dataitems("demo") == [] and _files_under(dh_home / "data" / "demo") == []


def test_saving_a_run_keeps_its_stored_status() -> None:
    """``run.save(update=True)`` updates what a user may change (labels); the status stays the controller's."""
    run = _function("table").run(action="job", on_log=lambda line: None)
    assert run.state == "COMPLETED"
    run.metadata.labels = ["reviewed"]
    run.status.state = "RUNNING"  # type: ignore[misc]
    run.save(update=True)
    stored = dh.get_run(run.key)
    assert stored.metadata.labels == ["reviewed"] and stored.status.state == "COMPLETED"
