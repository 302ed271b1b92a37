"""DigitalHubStopRunOperator: stop a DigitalHub run by its key, as a task (a service's teardown)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context as AirflowContext


class DigitalHubStopRunOperator(BaseOperator):
    """Stop the DigitalHub run ``run_key``: STOPPED, its runner killed (a service's server, a job's
    process). A run already finished is left as it is. The teardown of a ``serve`` task::

        serve = PythonRuntimeOperator(task_id="serve", action="serve", ...)
        stop = DigitalHubStopRunOperator(task_id="stop", run_key="{{ ti.xcom_pull(task_ids='serve')['run_key'] }}")
        serve >> use_it >> stop.as_teardown(setups=serve)

    A local service's process is killed from the machine it runs on; a stop that runs on another
    worker marks the run STOPPED, and the service, which reads its run's state every few seconds,
    ends itself. A service on Kubernetes has its Deployment and Service deleted, on the cluster the
    run recorded.

    Args:
        run_key: the run's key (``store://project/run/kind/id``). Templated.
        digitalhub_conn_id: the ``digitalhub`` connection.
        **kwargs: ``BaseOperator``'s (``task_id``, ``retries``, ...).
    """

    template_fields: Sequence[str] = ("run_key",)
    ui_color = "#f8d6d6"

    def __init__(self, *, run_key: str, digitalhub_conn_id: str = "digitalhub_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_key = run_key
        self.digitalhub_conn_id = digitalhub_conn_id

    def execute(self, context: AirflowContext) -> dict[str, Any]:
        import socket

        from airflow.sdk.exceptions import AirflowException

        from digitalhub_provider.entities import Run, State
        from digitalhub_provider.entities.keys import parse_key
        from digitalhub_provider.errors import DigitalHubError, EntityError
        from digitalhub_provider.hooks.digitalhub import DigitalHubHook
        from digitalhub_provider.sdk.controller import RunController

        ctx = DigitalHubHook(self.digitalhub_conn_id).get_context()
        try:
            key = parse_key(str(self.run_key))
            if key.entity_type != "run" or key.id is None:
                raise EntityError(f"run_key {self.run_key!r} is not a run's key (store://project/run/kind/id)")
            run = Run.from_dict(ctx.metadata.get(key.project, "run", key.id), ctx)
            before = run.state
            RunController(ctx, caller="the Airflow task").stop(run)
        except DigitalHubError as exc:
            raise AirflowException(str(exc)) from None
        host = run.status.get("host")
        running = before == State.RUNNING.value
        if running and run.status.get("launcher") == "local" and host and host != socket.gethostname():
            self.log.info("run %s STOPPED; its service on %s ends itself when it reads so", run.key, host)
        elif running and run.status.get("deployment"):
            where = f"{run.status.get('namespace')}/{run.status.get('deployment')}"
            self.log.info("run %s STOPPED; its Deployment and Service %s deleted", run.key, where)
        self.log.info("DigitalHub run %s: %s -> %s", run.key, before, run.state)
        return {"run_key": run.key, "state": run.state, "was": before}
