"""A service's readiness, as the launcher sees it: its probe, and the ``service`` field of its run.

The runner of a ``serve`` run answers ``GET`` on ``SERVICE_READY_PATH`` once its init function returned
(:mod:`digitalhub_provider.runtimes.python.serve`); until then the run is not RUNNING.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

from digitalhub_provider.errors import RunError
from digitalhub_provider.launchers.base import Handle
from digitalhub_provider.runtimes.contract import SERVICE_READY_PATH


def service_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def service_status(service: dict[str, Any]) -> dict[str, Any]:
    """DigitalHub's ``status.service`` of a run: where the service answers."""
    host, port = str(service["host"]), int(service["port"])
    return {"url": service_url(host, port), "host": host, "port": port}


def wait_ready(handle: Handle, service: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """The service's status once its probe answers 200; None when its runner ended first (its
    RunResult says why). A service that does not answer within ``timeout`` seconds is killed."""
    status = service_status(service)
    probe = status["url"].rstrip("/") + SERVICE_READY_PATH
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(probe, timeout=2) as answer:
                if answer.status == 200:
                    return status
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or still in its init function (503)
        time.sleep(0.05)
    handle.kill()
    raise RunError(f"the service did not answer its readiness probe ({probe}) within {timeout:g} s: it was stopped")
