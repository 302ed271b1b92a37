"""SubmittedRunOperator: execute a run created elsewhere (the REST API), by its key.

DigitalHub Core's SDK creates a run with ``local_execution=False`` and leaves its
execution to the platform: the REST API triggers the ``digitalhub_runs`` DAG
(:mod:`digitalhub_provider.dags.digitalhub_runs`) with the run's key, and this
operator runs it like the runtime operators run theirs: the same controller, the
connection's launcher (a local process, or a pod), the same XCom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from digitalhub_provider.operators.base import DigitalHubRunOperator

if TYPE_CHECKING:
    from airflow.sdk import Context as AirflowContext

    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.sdk.controller import RunController


class SubmittedRunOperator(DigitalHubRunOperator):
    """Execute the DigitalHub run ``run_key`` (``store://project/run/kind/id``), created CREATED by a
    client of the REST API.

    The function comes from the run (its ``spec.function``); the launcher from the connection
    (``launcher``: local, or kubernetes). A run that is no longer CREATED is not started again: a
    finished one ends the task with its outcome, one an earlier try left unfinished is adopted on
    Kubernetes (its pod may still run) and failed otherwise.

    Args:
        run_key: the run's key (templated: ``{{ params.run_key }}`` in the ``digitalhub_runs`` DAG).
        digitalhub_conn_id: the ``digitalhub`` connection (stores, launcher).
        deferrable: on Kubernetes, wait for the pod in Airflow's triggerer.
        run_as_root: on Kubernetes, let the pod run as root.
    """

    template_fields: Sequence[str] = ("run_key",)

    def __init__(
        self,
        *,
        run_key: str,
        digitalhub_conn_id: str = "digitalhub_default",
        deferrable: bool = False,
        run_as_root: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            project="-", digitalhub_conn_id=digitalhub_conn_id, deferrable=deferrable, run_as_root=run_as_root, **kwargs
        )
        self.run_key = run_key

    def _start(self, context: AirflowContext, reentry: bool = False) -> tuple[Any, RunController, Executable, Run]:
        from airflow.sdk.exceptions import AirflowException

        from digitalhub_provider.entities import Run, State
        from digitalhub_provider.entities.keys import parse_key
        from digitalhub_provider.errors import DigitalHubError, EntityError
        from digitalhub_provider.hooks.digitalhub import DigitalHubHook
        from digitalhub_provider.sdk.controller import RunController
        from digitalhub_provider.sdk.runspecs import executable_of

        self.operator_extra_links = ()
        hook = DigitalHubHook(self.digitalhub_conn_id)
        ctx = hook.get_context()
        self._ctx = ctx
        controller = RunController(ctx, caller="the Airflow task")
        kubernetes = self.use_kubernetes(hook)
        try:
            key = parse_key(self.run_key)
            if key.entity_type != "run" or key.id is None:
                raise EntityError(f"run_key {self.run_key!r} is not a run's key (store://project/run/kind/id)")
            run = Run.from_dict(ctx.metadata.get(key.project, "run", key.id), ctx)
            self.project = run.project
            if run.state not in (State.CREATED.value, *(s.value for s in State if s.final)):
                if reentry or (kubernetes and run.state == State.RUNNING.value):
                    self.log.info("Adopting DigitalHub run %s (state %s)", run.key, run.state)
                elif not State(controller.reconcile(run).state).final:  # a RunResult's outcome stands
                    controller.fail_stale(run, f"the worker of an earlier try stopped while the run was {run.state}")
            elif reentry and run.state == State.CREATED.value:
                raise AirflowException("no running DigitalHub run found for this task on re-entry")
            # A run that ended while the task was deferred (the reconciler read its RunResult) ends the
            # task with its outcome, like one that ended before the task started.
            if run.state == State.CREATED.value:
                # Labelled with its task instance, as the runtime operators label theirs (Airflow's task
                # instance tab, the reconciler's question to Airflow find it by them).
                labels = list(run.metadata.labels or [])
                run.metadata.labels = labels + [lab for lab in self.run_labels(context) if lab not in labels]
                controller.record(run)
        except DigitalHubError as exc:
            raise AirflowException(str(exc)) from None
        try:
            fn = executable_of(run, ctx)
        except DigitalHubError as exc:  # the run cannot start: it ends ERROR with the reason
            if not State(run.state).final:
                controller.transition(run, State.ERROR, str(exc))
            raise AirflowException(str(exc)) from None
        self._run = run
        self._kubernetes = kubernetes
        return hook, controller, fn, run
