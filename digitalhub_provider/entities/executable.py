"""Function, Workflow, Task and Run."""

from __future__ import annotations

import json
import time
from typing import Any

from digitalhub_provider.entities.base import Entity
from digitalhub_provider.errors import EntityError, EntityNotFoundError, RunError
from digitalhub_provider.states import FINAL_STATES, RunKind, State


class Executable(Entity):
    """An entity that tasks run: a Function or a Workflow."""

    def run(self, action: str | None = None, wait: bool = True, **kwargs: Any) -> Run:
        """Create a task and a run for ``action`` and execute it (docs/sdk.md, "Runs")."""
        return self.ctx.runs.run_executable(self, action=action, wait=wait, **kwargs)


class Function(Executable):
    ENTITY_TYPE = "function"


class Workflow(Executable):
    ENTITY_TYPE = "workflow"

    def run(self, action: str | None = "pipeline", wait: bool = True, **kwargs: Any) -> Run:
        return super().run(action=action, wait=wait, **kwargs)


class Task(Entity):
    ENTITY_TYPE = "task"


class Run(Entity):
    ENTITY_TYPE = "run"

    def __init__(self, **fields: Any) -> None:
        super().__init__(**fields)
        # The state this object last read from or wrote to the store: the run controller's writes
        # expect the store to still hold it (another process may have stopped the run meanwhile).
        self.saved_state: str | None = self.status.state

    @property
    def run_kind(self) -> RunKind:
        return RunKind.of(self.kind)

    def refresh(self) -> Run:
        """The stored run; one that nobody follows any more (its caller was killed) is finished from
        the evidence first (see ``RunController.reconcile``)."""
        super().refresh()
        self.saved_state = self.status.state
        if not State(self.state).final and not self.ctx.records_only:
            self.ctx.runs.reconcile_run(self)
        return self

    @property
    def state(self) -> str:
        return self.status.state or State.CREATED.value

    def output(self, output_name: str, as_key: bool = False, as_dict: bool = False) -> Any:
        """An output entity by name (or its key, or its dictionary)."""
        outputs: dict[str, str] = self.status.get("outputs") or {}
        if output_name not in outputs:
            raise EntityNotFoundError(
                f"run {self.id} has no output {output_name!r} (outputs: {', '.join(sorted(outputs)) or 'none'})"
            )
        key = outputs[output_name]
        if as_key:
            return key
        entity = self.ctx.crud.get_entity_by_key(key, ctx=self._ctx)
        return entity.to_dict() if as_dict else entity

    def outputs(self, as_key: bool = False, as_dict: bool = False) -> dict[str, Any]:
        names = self.status.get("outputs") or {}
        return {n: self.output(n, as_key=as_key, as_dict=as_dict) for n in names}

    def result(self, result_name: str) -> Any:
        """A result's value (one too large for the run's record is read from the data store)."""
        results: dict[str, Any] = self.status.get("results") or {}
        if result_name not in results:
            raise EntityNotFoundError(
                f"run {self.id} has no result {result_name!r} (results: {', '.join(sorted(results)) or 'none'})"
            )
        return self._value(results[result_name])

    def results(self) -> dict[str, Any]:
        return {name: self._value(value) for name, value in (self.status.get("results") or {}).items()}

    def _value(self, value: Any) -> Any:
        path = stored_result_path(value)
        if path is None:
            return value
        return json.loads(self.ctx.data_store(path).read_bytes(path))

    def logs(self) -> str:
        """The run's stored stdout and stderr."""
        return self.ctx.runs.read_logs(self)

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> Run:
        """Block until the run reaches COMPLETED, ERROR or STOPPED."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh() and State(self.state) not in FINAL_STATES:
            if deadline is not None and time.monotonic() > deadline:
                raise RunError(f"run {self.id} still {self.state} after {timeout}s")
            time.sleep(poll)
        return self

    def stop(self) -> Run:
        """Kill the run's process and set it STOPPED."""
        return self.ctx.runs.stop_run(self)

    def invoke(self, method: str | None = None, url: str | None = None, **kwargs: Any) -> Any:
        """Call the run's service (a ``serve`` run) with ``requests``: its keyword arguments (``json``,
        ``data``, ``headers``, ``params``, ...), the service's URL unless ``url`` is given, GET unless
        a body is given (then POST). Returns the ``requests.Response``."""
        if url is None:
            if self.state != State.RUNNING.value:
                raise EntityError(
                    f"run {self.id} is {self.state}: only the service of a RUNNING serve run can be invoked"
                )
            url = (self.status.get("service") or {}).get("url")
            if not url:
                raise EntityError(f"run {self.id} has no service (status.service): is it a run of the serve action?")
        if method is None:
            method = "POST" if any(kwargs.get(k) is not None for k in ("data", "json", "files")) else "GET"
        try:
            import requests
        except ImportError:
            raise EntityError(
                "run.invoke() needs the requests package: pip install 'airflow-provider-digitalhub[serve]'"
            ) from None
        kwargs.setdefault("timeout", 60)
        return requests.request(method, url, **kwargs)


# The one key of a reference to a result too large for the run's record: {"stored_result": {"path", "bytes"}}.
STORED_RESULT = "stored_result"


def stored_result_path(value: Any) -> str | None:
    """Where a result too large for the run's record is (a :data:`STORED_RESULT` reference), or None."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(STORED_RESULT), dict):
        path = value[STORED_RESULT].get("path")
        return path if isinstance(path, str) else None
    return None
