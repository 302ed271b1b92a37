"""A stand-in for the KFP v2beta1 runs API on 127.0.0.1, for the kfp runtime's server path.

It serves what ``kfp.Client`` calls for the provider: ``GET /apis/v2beta1/healthz``,
``POST /apis/v2beta1/runs`` (create), ``GET /apis/v2beta1/runs/{id}`` (get) and
``POST /apis/v2beta1/runs/{id}:terminate``. Nothing is executed: each run walks
through a *plan* of states, one per ``get`` (the last one stays), so a test
decides whether a run succeeds, fails or is canceled, and how long it stays
RUNNING. ``terminate`` moves a run to CANCELING then CANCELED.

It runs in a thread of the test process (a ``ThreadingHTTPServer`` on a free
port) and is shut down by :meth:`KfpStandIn.stop`, which the fixture calls on
teardown whatever the test's outcome.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/apis/v2beta1"
DEFAULT_PLAN = ["PENDING", "RUNNING", "SUCCEEDED"]


class KfpStandIn:
    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, deque[tuple[str, str | None]]] = {}
        self.next_plans: deque[list[Any]] = deque()
        self.requests: list[tuple[str, str]] = []
        self.created: list[dict[str, Any]] = []
        self.terminated: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="kfp-standin", daemon=True)

    def start(self) -> KfpStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    # -- what tests use -------------------------------------------------------------------------
    def plan_next(self, *states: str | tuple[str, str]) -> None:
        """The states the next created run goes through (``("FAILED", "why")`` carries an error)."""
        self.next_plans.append(list(states))

    def add_run(self, *states: str | tuple[str, str], display_name: str = "existing") -> str:
        """A run that already exists on the server (an earlier try created it)."""
        return self._create({"display_name": display_name}, list(states))["run_id"]  # type: ignore[no-any-return]

    def state_of(self, run_id: str) -> str:
        """The state the run's next ``get`` answers."""
        with self.lock:
            return self.plans[run_id][0][0]

    # -- the API --------------------------------------------------------------------------------
    def _create(self, body: dict[str, Any], plan: list[Any] | None = None) -> dict[str, Any]:
        with self.lock:
            run_id = uuid.uuid4().hex
            steps = plan or (self.next_plans.popleft() if self.next_plans else list(DEFAULT_PLAN))
            self.plans[run_id] = deque((s, None) if isinstance(s, str) else (s[0], s[1]) for s in steps)
            run = {
                "run_id": run_id,
                "display_name": body.get("display_name"),
                "experiment_id": body.get("experiment_id") or "default",
                "pipeline_spec": body.get("pipeline_spec"),
                "runtime_config": body.get("runtime_config"),
                "storage_state": "AVAILABLE",
                "created_at": "2026-01-01T00:00:00Z",
                "state": "PENDING",
            }
            self.runs[run_id] = run
            if plan is None:
                self.created.append(run)
            return dict(run)

    def _get(self, run_id: str) -> dict[str, Any] | None:
        with self.lock:
            run = self.runs.get(run_id)
            if run is None:
                return None
            plan = self.plans[run_id]
            state, error = plan[0]
            if len(plan) > 1:
                plan.popleft()
            run["state"] = state
            if error:
                run["error"] = {"code": 2, "message": error}
            return dict(run)

    def _terminate(self, run_id: str) -> bool:
        with self.lock:
            if run_id not in self.runs:
                return False
            self.terminated.append(run_id)
            self.plans[run_id] = deque([("CANCELING", None), ("CANCELED", None)])
            return True


def _handler(standin: KfpStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            return json.loads(raw or b"{}")  # type: ignore[no-any-return]

        def _not_found(self) -> None:
            self._send(404, {"code": 5, "message": f"{self.path} not found"})

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            standin.requests.append(("GET", path))
            if path == f"{PREFIX}/healthz":
                return self._send(200, {"multi_user": False})
            if path.startswith(f"{PREFIX}/runs/"):
                run = standin._get(path[len(f"{PREFIX}/runs/") :])
                return self._send(200, run) if run is not None else self._not_found()
            return self._not_found()

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            standin.requests.append(("POST", path))
            body = self._body()
            if path == f"{PREFIX}/runs":
                return self._send(200, standin._create(body))
            if path.startswith(f"{PREFIX}/runs/") and path.endswith(":terminate"):
                run_id = path[len(f"{PREFIX}/runs/") : -len(":terminate")]
                return self._send(200, {}) if standin._terminate(run_id) else self._not_found()
            return self._not_found()

    return Handler
