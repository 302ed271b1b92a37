"""Python jobs inside the Airflow task's interpreter: same contract, logs, kill and timeout as a subprocess."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import digitalhub_provider as dh
from tests.airflow_helpers import load_dags, task_states, xcoms

pytestmark = pytest.mark.usefixtures("airflow_db")
TEST_DAGS = Path(__file__).parent / "dags"


def _dags() -> dict[str, Any]:
    return load_dags("in_process.py", TEST_DAGS)


def _run_files(run: Any) -> set[str]:
    folder = Path(run.ctx.data_store().local_path(run.ctx.run_url(run.id, "")) or "")
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def _runs_by_task(project: str = "demo") -> dict[str, Any]:
    runs = {}
    for run in dh.list_runs(project):
        task = next(lab.split("=", 1)[1] for lab in run.metadata.labels if lab.startswith("airflow.task_id="))
        runs[task] = run
    return runs


def test_python_job_runs_in_the_task_interpreter_with_the_same_contract(dh_home: Path) -> None:
    def digitalhub_env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k.startswith("DIGITALHUB_")}

    env_before = digitalhub_env()
    modules_before = set(sys.modules)
    dr = _dags()["two_sources"].test()
    assert str(dr.state) == "success", task_states(dr)
    values = xcoms("in_process_two_sources", dr.run_id)
    assert values[("first", "answer")] == 1
    assert values[("second", "output")] == 2  # not the first source's main.py, still imported
    # the handler saw the connection's settings as a runner process would, and they are gone again
    assert values[("first", "data_url")] == str(dh_home / "data")
    assert digitalhub_env() == env_before
    assert not [p for p in sys.path if "dh-run-" in p]  # the sources' temporary folders
    new_modules = [sys.modules[m] for m in set(sys.modules) - modules_before]
    assert not [m for m in new_modules if "dh-run-" in str(getattr(m, "__file__", ""))]
    runs = _runs_by_task()
    for task, run in runs.items():
        assert run.status.state == "COMPLETED", (task, run.status.message)
        assert run.status.get("launcher") == "in-process" and not run.status.get("pid")
        assert [t["status"] for t in run.status.transitions] == ["CREATED", "BUILT", "READY", "RUNNING", "COMPLETED"]
        assert {"runspec.json", "result.json"} <= _run_files(run)
    logs = runs["first"].logs()
    assert "printed by the handler" in logs and "printed by a child process" in logs


def test_a_function_that_cannot_run_in_process_is_refused_before_its_environment_is_built(
    dh_home: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    envs = tmp_path / "no-envs-here"
    monkeypatch.setenv("DIGITALHUB_ENVS_DIR", str(envs))
    dr = _dags()["refused"].test()
    out = capfd.readouterr()
    assert str(dr.state) == "failed"
    words = "in_process=True cannot be honoured: the function has requirements (six)"
    assert words in out.out + out.err
    (run,) = dh.list_runs("demo")
    assert run.status.state == "ERROR" and words in run.status.message
    assert not envs.exists()  # no environment was built for it
    assert _run_files(run) == set()


def test_in_process_true_on_the_kubernetes_launcher_fails_before_any_run(dh_home: Path) -> None:
    from airflow.sdk.exceptions import AirflowException

    from digitalhub_provider.operators import PythonRuntimeOperator

    op = PythonRuntimeOperator(task_id="t", project="demo", code="def h():\n    return 1\n", handler="h",
                               local_execution=False, in_process=True)  # fmt: skip
    with pytest.raises(AirflowException, match="in_process=True runs on the local launcher only"):
        op.execute(_context(op))
    assert dh.list_runs("demo") == []


def test_sys_exit_in_the_handler_fails_the_run_not_the_worker(dh_home: Path) -> None:
    dr = _dags()["sys_exit"].test()
    assert str(dr.state) == "failed"
    (run,) = dh.list_runs("demo")
    assert run.status.state == "ERROR" and run.status.message == "SystemExit: 3"
    assert "result.json" in _run_files(run)


def test_execution_timeout_unwinds_the_handler_and_errors_the_run(dh_home: Path) -> None:
    dr = _dags()["timeout"].test()
    assert str(dr.state) == "failed"
    (run,) = dh.list_runs("demo")
    assert run.status.state == "ERROR"
    assert run.status.message.startswith("the Airflow task was interrupted: AirflowTaskTimeout")
    assert "result.json" not in _run_files(run)
    logs = run.logs()
    assert "sleeping" in logs and "woke up" not in logs


def _context(task: Any) -> dict[str, Any]:
    from types import SimpleNamespace

    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(dag_id="manual_dag", run_id="manual_run", task_id=task.task_id, map_index=-1, try_number=1,
                         xcom_push=lambda key, value: pushed.__setitem__(key, value))  # fmt: skip
    return {"ti": ti, "dag": None}


def test_sigterm_stops_the_run_like_airflow_kills_a_task(dh_home: Path) -> None:
    """Airflow's task runner answers SIGTERM by calling the operator's ``on_kill`` in the main thread
    (its ``_on_term`` handler); here the same handler is installed around a direct ``execute``."""
    from airflow.sdk.exceptions import AirflowException

    from digitalhub_provider.operators import PythonRuntimeOperator
    from tests.dags.in_process import SLOW

    op = PythonRuntimeOperator(task_id="slow", project="demo", code=SLOW, handler="h", python_version="PYTHON3_11")

    def send_sigterm_once_sleeping() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            proc = op._proc
            if proc is not None and proc.log_path.exists() and "sleeping" in proc.log_path.read_text():
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    previous = signal.signal(signal.SIGTERM, lambda signum, frame: op.on_kill())
    killer = threading.Thread(target=send_sigterm_once_sleeping, daemon=True)
    try:
        killer.start()
        with pytest.raises(AirflowException, match="ended STOPPED: stopped by request"):
            op.execute(_context(op))
    finally:
        signal.signal(signal.SIGTERM, previous)
    killer.join(5)
    (run,) = dh.list_runs("demo")
    assert run.status.state == "STOPPED"
    assert "result.json" not in _run_files(run)
    assert "woke up" not in run.logs()


def test_in_process_false_and_the_connection_extra_keep_the_subprocess(
    dh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from digitalhub_provider.operators import PythonRuntimeOperator

    code = "import os\n\ndef h():\n    return os.getpid()\n"
    common = {"project": "demo", "code": code, "handler": "h", "python_version": "PYTHON3_11"}
    monkeypatch.setenv("AIRFLOW_CONN_DH_NO_IN_PROCESS", json.dumps({"conn_type": "digitalhub",
                                                                    "extra": {"in_process": "false"}}))  # fmt: skip
    for kwargs in ({"in_process": False}, {"digitalhub_conn_id": "dh_no_in_process"}, {}):
        op = PythonRuntimeOperator(task_id="t", **common, **kwargs)
        summary = op.execute(_context(op))
        separate = summary["results"]["output"] != os.getpid()
        assert separate == bool(kwargs), kwargs
        run = dh.get_run(summary["run_key"])
        assert run.status.get("launcher") == ("local" if separate else "in-process")
        assert bool(run.status.get("pid")) == separate
