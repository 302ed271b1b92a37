"""Runs executed by the platform (local_execution=False, the SDK's default): one to COMPLETED with
its result, one failing (ERROR with the handler's error), one stopped while it runs."""

from __future__ import annotations

import time

import digitalhub as dh
from _common import PYTHON_VERSION, describe, emit, param

REMOTE_CODE = """
import time


def double(x: int):
    return x * 2


def explode(x: int):
    raise ValueError(f"remote explosion {x}")


def linger(seconds: int):
    time.sleep(seconds)
    return seconds
"""

project = param("project")
dh.get_or_create_project(project)
spec = {"kind": "python", "code": REMOTE_CODE, "python_version": PYTHON_VERSION}
observed: dict = {}

doubler = dh.new_function(project=project, name="doubler", handler="double", **spec)
run = doubler.run(action="job", parameters={"x": 21})
observed["submitted_state"] = run.status.state
run = run.wait(log_info=False)
observed["done"] = {"id": run.id, "state": run.status.state, "results": run.status.results,
                    "message": run.status.message}  # fmt: skip

exploder = dh.new_function(project=project, name="exploder", handler="explode", **spec)
failed = exploder.run(action="job", parameters={"x": 7}).wait(log_info=False)
observed["failed"] = {"state": failed.status.state, "message": failed.status.message}

lingerer = dh.new_function(project=project, name="lingerer", handler="linger", **spec)
long_run = lingerer.run(action="job", parameters={"seconds": 600})
deadline = time.monotonic() + 180
while long_run.status.state != "RUNNING" and time.monotonic() < deadline:
    time.sleep(1)
    long_run.refresh()
observed["long_state_before_stop"] = long_run.status.state
try:
    long_run.stop()
except Exception as exc:
    observed["stop_error"] = describe(exc)
long_run.refresh()
observed["long"] = {"id": long_run.id, "state": long_run.status.state, "message": long_run.status.message,
                    "airflow": getattr(long_run.status, "airflow", None)}  # fmt: skip
emit(observed)
