"""The python runtime's serve action on the local launcher: real services (uvicorn, nuclio-sdk's
types) invoked over HTTP, stopped, killed, and the bad input that must not start one."""

from __future__ import annotations

import os
import re
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
from digitalhub_provider.entities import State
from digitalhub_provider.errors import EntityError
from digitalhub_provider.launchers import processes

PY = {"kind": "python", "python_version": "PYTHON3_11"}
CODE = """
import json, os


def init(context, factor=2, project=None):
    context.factor = factor
    context.calls = 0
    context.project_name = project.name if project is not None else None
    context.logger.info("init done")


def score(context, event):
    context.calls += 1
    rows = json.loads(event.body or b"{}").get("rows", [])
    return {"scores": [r * context.factor for r in rows], "calls": context.calls, "method": event.method,
            "path": event.path, "fields": event.fields, "worker": os.getpid(),
            "project": context.project_name, "type": event.content_type}


def fails(context, event):
    if event.path == "/boom":
        raise ValueError("no score for " + event.path)
    return "fine"


def shapes(context, events):  # the seed's name for the second argument
    kind = events.fields.get("kind")
    if kind == "bytes":
        return b"\\x00\\x01raw"
    if kind == "response":
        return context.Response(body="teapot", headers={"x-score": "7"}, content_type="text/plain", status_code=418)
    if kind == "tuple":
        return 201, {"created": True}
    return "plain text"


async def waits(context, event):
    import asyncio

    await asyncio.sleep(0)
    return {"async": True, "body": event.body.decode()}


def not_a_handler(rows):
    return rows


def init_fails(context):
    raise RuntimeError("model file missing")
"""


@pytest.fixture
def services() -> Iterator[list[Any]]:
    """Every run a test starts is stopped at its end, and its process group checked gone."""
    runs: list[Any] = []
    yield runs
    for run in runs:
        if not State(dh.get_run(run.key).state).final:
            run.stop()
        pid = run.status.get("pid")
        if pid:
            assert not processes.group_alive(int(pid)), f"the service of run {run.id} left processes"


def _serve(services: list[Any], handler: str, **kwargs: Any) -> Any:
    fn = dh.new_function(project="demo", name=handler.replace("_", "-"), code=CODE, handler=handler, **PY,
                         **{k: kwargs.pop(k) for k in ("init_function",) if k in kwargs})  # fmt: skip
    run = fn.run(action="serve", **kwargs)
    services.append(run)
    return run


def test_a_service_answers_json_keeps_its_init_state_and_stops(services: list[Any]) -> None:
    run = _serve(services, "score", init_function="init", parameters={"factor": 3})
    assert run.state == "RUNNING"
    service = run.status.get("service")
    assert service["host"] == "127.0.0.1" and service["url"] == f"http://127.0.0.1:{service['port']}/"
    assert dh.get_run(run.key).status.get("service") == service  # what refresh() shows
    first = run.invoke(json={"rows": [1, 2]})
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert first.json()["scores"] == [3, 6] and first.json()["method"] == "POST"
    assert first.json()["project"] == "demo" and first.json()["type"] == "application/json"
    second = run.invoke(url=service["url"] + "rank?top=2")
    assert second.json()["calls"] == 2  # the context the init function set, across calls
    assert (second.json()["method"], second.json()["path"], second.json()["fields"]) == ("GET", "/rank", {"top": "2"})
    assert "init done" in run.logs()
    pid = int(run.status.get("pid"))
    run.stop()
    assert run.state == "STOPPED" and dh.get_run(run.key).state == "STOPPED"
    assert not processes.group_alive(pid)
    with pytest.raises(EntityError, match=rf"run {run.id} is STOPPED: only the service of a RUNNING serve run"):
        run.invoke(json={"rows": [1]})


def test_init_parameters_is_the_seeds_other_name_for_parameters(services: list[Any]) -> None:
    run = _serve(services, "score", init_function="init", init_parameters={"factor": 10})
    assert run.invoke(json={"rows": [4]}).json()["scores"] == [40]
    with pytest.raises(EntityError, match="not both"):
        dh.get_function("score", project="demo").run(action="serve", parameters={}, init_parameters={})


def test_a_handler_that_raises_answers_500_logs_its_traceback_and_the_service_goes_on(services: list[Any]) -> None:
    run = _serve(services, "fails")
    url = run.status.get("service")["url"]
    failed = run.invoke(url=url + "boom")
    assert failed.status_code == 500 and failed.text == "ValueError: no score for /boom"
    assert run.invoke().text == "fine"
    log = run.logs()
    assert "handler 'fails' raised:" in log and 'raise ValueError("no score for " + event.path)' in log
    assert "serve.py" not in log.split("handler 'fails' raised:")[1].split("ValueError: no score")[0]


@pytest.mark.parametrize(
    ("kind", "status", "body", "content_type"),
    [
        ("bytes", 200, b"\x00\x01raw", None),
        ("response", 418, b"teapot", "text/plain"),
        ("tuple", 201, b'{"created": true}', "application/json"),
        ("", 200, b"plain text", "text/plain"),
    ],
)
def test_what_a_handler_returns_is_answered_as_nuclio_answers_it(
    services: list[Any], kind: str, status: int, body: bytes, content_type: str | None
) -> None:
    run = _serve(services, "shapes")
    answer = run.invoke(params={"kind": kind})
    assert (answer.status_code, answer.content) == (status, body)
    if content_type:
        assert answer.headers["content-type"] == content_type
    if kind == "response":
        assert answer.headers["x-score"] == "7"


def test_an_async_handler_is_awaited(services: list[Any]) -> None:
    run = _serve(services, "waits")
    assert run.invoke(data=b"ping").json() == {"async": True, "body": "ping"}


def test_replicas_are_worker_processes_each_with_its_init(services: list[Any]) -> None:
    run = _serve(services, "score", init_function="init", replicas=2)
    workers = {run.invoke(json={"rows": [1]}).json()["worker"] for _ in range(40)}
    assert len(workers) == 2
    assert all(processes.group_alive(int(run.status.get("pid"))) for _ in workers)
    assert run.spec.get("replicas") == 2


def test_a_service_killed_with_sigkill_ends_error(services: list[Any]) -> None:
    """Followed by the process that started it: finished at once."""
    run = _serve(services, "fails")
    os.killpg(int(run.status.get("pid")), signal.SIGKILL)
    stored = _until_final(run)
    assert stored.state == "ERROR"
    assert stored.status.get("message") == "the runner was killed by signal 9 before writing a result"


STARTER = """
import digitalhub_provider as dh
fn = dh.get_function("fails", project="demo")
print(fn.run(action="serve").key, flush=True)
"""


def test_a_service_whose_starter_exited_outlives_it_and_is_reconciled_when_killed(services: list[Any]) -> None:
    """Started by a script that exited: it serves on; SIGKILLed, the next refresh() finds it gone."""
    run = _started_elsewhere(services)
    assert run.refresh().state == "RUNNING" and run.invoke().text == "fine"
    pid = int(run.status.get("pid"))
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while processes.group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.refresh().state == "ERROR"
    assert run.status.get("message").startswith(f"runner lost: the runner process {pid} on ")


def _started_elsewhere(services: list[Any]) -> Any:
    """A service started by a script that has exited since."""
    dh.new_function(project="demo", name="fails", code=CODE, handler="fails", **PY)
    done = subprocess.run([sys.executable, "-c", STARTER], capture_output=True, text=True, timeout=120, check=True)
    run = dh.get_run(done.stdout.strip().splitlines()[-1])
    services.append(run)
    return run


def _until_final(run: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = dh.get_run(run.key)
        if State(stored.state).final:
            return stored
        time.sleep(0.05)
    raise AssertionError(f"run {run.id} still {dh.get_run(run.key).state} after {timeout} s")


# -- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("handler", "extra", "message"),
    [
        ("no_such_handler", {}, "no_such_handler"),
        ("not_a_handler", {}, r"handler 'not_a_handler' takes \(rows\): a service's handler takes \(context, event\)"),
        ("score", {"init_function": "no_such_init"}, "no_such_init"),
    ],
)
def test_a_service_that_cannot_start_ends_error_and_leaves_no_process(
    services: list[Any], handler: str, extra: dict[str, Any], message: str
) -> None:
    run = _serve(services, handler, **extra)
    assert run.state == "ERROR"
    assert re.search(message, run.status.get("message")), run.status.get("message")
    assert not processes.group_alive(int(run.status.get("pid")))


@pytest.mark.parametrize("replicas", [1, 2])
def test_an_init_function_that_raises_ends_error_with_its_traceback(services: list[Any], replicas: int) -> None:
    run = _serve(services, "score", init_function="init_fails", replicas=replicas)
    assert run.state == "ERROR"
    assert run.status.get("message") == "init function 'init_fails' raised RuntimeError: model file missing"
    assert 'raise RuntimeError("model file missing")' in (run.status.get("traceback") or "")
    assert not processes.group_alive(int(run.status.get("pid")))


def test_a_port_in_use_ends_error_naming_it(services: list[Any]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        run = _serve(services, "fails", port=port)
    assert run.state == "ERROR"
    assert run.status.get("message").startswith(f"the service cannot listen on 127.0.0.1:{port}: ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"service_type": "Public"}, "service_type.*must be one of ClusterIP, NodePort, LoadBalancer"),
        ({"replicas": 0}, "replicas must be 1 or more for a service, got 0"),
        ({"port": 70000}, "port.*must be a TCP port"),
        ({"service_name": "Not_A_Name"}, "invalid service name 'Not_A_Name'"),
    ],
)
def test_bad_service_arguments_are_refused_before_anything_starts(kwargs: dict[str, Any], message: str) -> None:
    fn = dh.new_function(project="demo", name="fails", code=CODE, handler="fails", **PY)
    with pytest.raises(EntityError, match=message):
        fn.run(action="serve", **kwargs)
    assert dh.list_runs("demo") == []


def test_a_host_it_cannot_listen_on_ends_the_run_error_before_its_runner_starts(services: list[Any]) -> None:
    run = _serve(services, "fails", host="no-such-host.invalid")
    assert run.state == "ERROR" and run.status.get("pid") is None
    assert run.status.get("message").startswith("the service cannot listen on host 'no-such-host.invalid'")


def test_serve_arguments_belong_to_serve() -> None:
    fn = dh.new_function(project="demo", name="fails", code=CODE, handler="fails", **PY)
    with pytest.raises(EntityError, match=r"replicas: argument.*of the serve action, not of job"):
        fn.run(action="job", replicas=2)


def test_invoke_needs_a_serve_run() -> None:
    fn = dh.new_function(project="demo", name="plain", code="def plain():\n    return 1\n", handler="plain", **PY)
    run = fn.run()
    with pytest.raises(EntityError, match=f"run {run.id} is COMPLETED"):
        run.invoke()


# -- in Airflow ------------------------------------------------------------------------------------------
def test_the_serve_scoring_example_sets_up_calls_and_tears_down_its_service(airflow_db: str) -> None:
    from tests.airflow_helpers import load_dag, task_states, xcoms

    dr = load_dag("serve_scoring.py").test()
    assert task_states(dr) == {"serve": "success", "score_batch": "success", "stop": "success"}
    pushed = xcoms("serve_scoring", dr.run_id)
    assert pushed[("score_batch", "output")] == [2.5, 2.0]  # 0.5*1 + 2*1, 0.5*2 + 2*0.5
    served = pushed[("serve", "return_value")]
    assert served["state"] == "RUNNING" and served["service"]["url"].startswith("http://127.0.0.1:")
    run = dh.get_run(served["run_key"])
    assert run.state == "STOPPED"
    assert "scoring with weights [0.5, 2.0]" in run.logs()
    assert not processes.group_alive(int(run.status.get("pid")))


def test_a_failing_call_between_setup_and_teardown_still_stops_the_service(airflow_db: str) -> None:
    from tests.airflow_helpers import load_dag, task_states, xcoms

    dr = load_dag("serve_teardown.py", Path(__file__).parent / "dags").test()
    assert task_states(dr) == {"serve": "success", "call": "failed", "stop": "success"}
    run = dh.get_run(xcoms("serve_teardown", dr.run_id)[("serve", "return_value")]["run_key"])
    assert run.state == "STOPPED" and run.spec.get("replicas") == 2
    assert not processes.group_alive(int(run.status.get("pid")))


def test_a_stop_that_cannot_signal_the_service_reaches_it_through_its_runs_state(services: list[Any]) -> None:
    """A stop from another machine: the run STOPPED in the store, no signal; the service reads it and ends."""
    from digitalhub_provider.sdk.controller import RunController

    run = _started_elsewhere(services)  # not followed by this process, which could kill it
    pid = int(run.status.get("pid"))
    elsewhere = dh.get_run(run.key)
    controller = RunController(elsewhere.ctx)
    controller.record(elsewhere, host="another-host")  # what a stop on another worker sees: nothing to signal
    controller.stop(elsewhere)
    assert dh.get_run(run.key).state == "STOPPED"
    deadline = time.monotonic() + 30
    while processes.group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.group_alive(pid)
    assert "is STOPPED: the service stops" in run.logs()


def test_a_runner_without_the_serve_extra_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """In an image without uvicorn or nuclio-sdk (the local launcher adds them itself), the service's
    run ends ERROR naming what is missing and the extra that brings it, before any source is fetched."""
    from digitalhub_provider.runtimes.contract import RunSpec
    from digitalhub_provider.runtimes.python import serve

    monkeypatch.setattr(serve, "SERVE_MODULES", ("uvicorn", "no_such_module_here"))
    spec = RunSpec(run_id="r1", run_key="store://p/run/python+serve:run/r1", project="p", runtime="python",
                   action="serve", function={}, source={"url": "s3://nowhere/x.py"}, handler="h")  # fmt: skip
    result = serve.run_job(spec, ctx=None)  # type: ignore[arg-type]
    assert result.state == "ERROR"
    assert result.message == (
        "the serve action needs no_such_module_here in the runner's environment: install the provider's serve "
        "extra in the image (images/python/Dockerfile does)"
    )
