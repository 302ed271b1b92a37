"""What every DigitalHub operator shares: connection, run lifecycle, XCom bridge, retries, kill.

Thin by design: the run's life is the run controller's
(:mod:`digitalhub_provider.sdk.controller`); this class picks the function and
the launcher, hands both to the controller, and bridges the outcome into XCom. Nothing here touches a store
or imports a heavy library before ``execute``: DAG parsing stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseOperator

from digitalhub_provider.assets import OUTPUTS_ALIAS
from digitalhub_provider.links.run import DigitalHubRunLink, RunLinks
from digitalhub_provider.operators.airflow_internals import renders_to_itself, template_fields_with

if TYPE_CHECKING:
    from airflow.sdk import Context as AirflowContext

    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.launchers.base import Handle, Launcher
    from digitalhub_provider.sdk.context import Context
    from digitalhub_provider.sdk.controller import RunController

LABEL_PREFIX = "airflow."
# What Jinja renders: the run's arguments. Never the function's spec (source, handler, requirements,
# images): source code has braces of its own (``f"{{x}}"``), and a spec that changed from one DAG run
# to the next would make a new function version each time.
RUN_TEMPLATE_FIELDS = ("project", "function", "function_key", "inputs", "parameters", "envs", "outputs", "values")


class DigitalHubRunOperator(BaseOperator):
    """Base of the runtime operators: run one action of a DigitalHub function as an Airflow task."""

    entity_type = "function"
    function_kind = "python"
    spec_fields: Sequence[str] = ()
    source_hint = "code_src, code or base64"  # how a task gives the function's source
    # The run link: the run's page in the connection's console, else in the plugin's (see RunLinks).
    operator_extra_links = RunLinks()

    def __init__(
        self,
        *,
        project: str,
        function: str | None = None,
        function_key: str | None = None,
        action: str | None = None,
        inputs: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        outputs: list[str] | dict[str, str] | None = None,
        values: list[str] | None = None,
        local_execution: bool | None = None,
        in_process: bool | None = None,
        node_selector: list[dict[str, Any]] | dict[str, str] | None = None,
        volumes: list[dict[str, Any]] | None = None,
        resources: dict[str, Any] | None = None,
        affinity: dict[str, Any] | None = None,
        tolerations: list[dict[str, Any]] | None = None,
        envs: list[dict[str, Any]] | None = None,
        secrets: list[str] | None = None,
        profile: str | None = None,
        backoff_limit: int | None = None,
        labels: list[str] | None = None,
        cache: bool | dict[str, Any] | None = None,
        digitalhub_conn_id: str = "digitalhub_default",
        deferrable: bool = False,
        run_as_root: bool = False,
        **kwargs: Any,
    ) -> None:
        # The run's output entities are Asset events, added at run time through this alias (assets.py).
        given = kwargs.get("outlets")
        outlets = list(given) if isinstance(given, (list, tuple)) else ([given] if given is not None else [])
        kwargs["outlets"] = [*outlets, AssetAlias(OUTPUTS_ALIAS)]
        # Inputs given as Assets (each run reads the latest version) are the task's inlets too.
        declared = kwargs.get("inlets")
        inlets = list(declared) if isinstance(declared, (list, tuple)) else ([declared] if declared is not None else [])
        asset_inputs = [v for v in inputs.values() if isinstance(v, Asset)] if isinstance(inputs, dict) else []
        if asset_inputs:
            kwargs["inlets"] = [*inlets, *(a for a in asset_inputs if a not in inlets)]
        if backoff_limit is not None and "retries" not in kwargs:
            # DigitalHub's backoff_limit is Airflow's retries, with exponential backoff.
            kwargs["retries"] = backoff_limit
            kwargs.setdefault("retry_exponential_backoff", 2.0)
        super().__init__(**kwargs)
        # See __setattr__: fields join as they get a value (also those a subclass set before this).
        every = type(self).template_fields
        self.template_fields: Sequence[str] = tuple(f for f in every if getattr(self, f, None) is not None)
        self.project = project
        self.function = function
        self.function_key = function_key
        self.action = action
        self.inputs = inputs
        self.parameters = parameters
        self.outputs = outputs
        self.values = values
        self.local_execution = local_execution
        self.in_process = in_process
        self.node_selector = node_selector
        self.volumes = volumes
        self.task_resources = resources  # BaseOperator.resources means Airflow's own Resources
        self.affinity = affinity
        self.tolerations = tolerations
        self.envs = envs
        self.secrets = secrets
        self.profile = profile
        self.backoff_limit = backoff_limit
        self.labels = labels
        self.cache = cache
        self.digitalhub_conn_id = digitalhub_conn_id
        self.deferrable = deferrable
        self.run_as_root = run_as_root
        self.run_link = ""
        self._run: Run | None = None
        self._ctx: Context | None = None
        self._proc: Handle | None = None  # the runner being followed
        self._kubernetes = False

    # -- the function ---------------------------------------------------------------------------
    def function_spec(self) -> dict[str, Any]:
        """The spec the DAG gives (empty when the task names an existing function)."""
        return {f: getattr(self, f) for f in self.spec_fields if getattr(self, f, None) is not None}

    def from_dag_folder(self, path: str) -> str:
        """A relative local path, read from the DAG file's folder (known once the task runs)."""
        folder = getattr(self, "_dag_folder", None)
        if folder and "://" not in path and not os.path.isabs(path):
            return os.path.join(folder, path)
        return path

    def has_source(self, spec: dict[str, Any]) -> bool:
        return bool(spec.get("code") or spec.get("code_src") or spec.get("base64"))

    def resolve_function(self, ctx: Context) -> Executable:
        """The function to run: by key, by name, or created from the DAG's spec (a new
        version only when the spec changed, so reruns make no new versions)."""
        from digitalhub_provider.entities import ENTITY_CLASSES
        from digitalhub_provider.entities.specs import validate_spec
        from digitalhub_provider.errors import EntityNotFoundError
        from digitalhub_provider.stores import crud

        cls = ENTITY_CLASSES[self.entity_type]
        if self.function_key:
            return crud.get_entity(cls, self.function_key, ctx=ctx)  # type: ignore[return-value]
        name = self.function or self.task_id
        spec = self.function_spec()
        if not self.has_source(spec):
            try:
                return crud.get_entity(cls, name, project=self.project, ctx=ctx)  # type: ignore[return-value]
            except EntityNotFoundError:
                raise EntityNotFoundError(
                    f"{self.entity_type} {name!r} does not exist in project {self.project!r} and the task gives "
                    f"no spec to create it ({self.source_hint})"
                ) from None
        try:
            latest = crud.get_entity(cls, name, project=self.project, ctx=ctx)
        except EntityNotFoundError:
            pass
        else:
            # A DAG spec equal to the stored one was validated when it was saved (validation is
            # idempotent): the usual rerun builds no spec model in the task process. The image a build
            # recorded on the latest version is not the DAG's to undo: a DAG that names none runs on it.
            stored = latest.spec if "image" in spec else {k: v for k, v in latest.spec.items() if k != "image"}
            if latest.kind == self.function_kind and (
                stored == spec or stored == validate_spec(self.entity_type, self.function_kind, spec)
            ):
                return latest  # type: ignore[return-value]
        # A new version; building it validates the spec (a bad one is refused here).
        return crud.new_entity(cls, project=self.project, name=name, kind=self.function_kind, ctx=ctx, **spec)  # type: ignore[return-value]

    # -- templates --------------------------------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        """A templated field is one of this task's ``template_fields`` once it holds a value.

        Airflow stores every templated field of a task once rendered, at ~0.5 ms each in the task
        process (a pydantic adapter per field) and one more column in the API server's request: the
        arguments a task leaves unset are not among its fields (the class keeps the full list, which
        mapped tasks and the UI read). What this relies on: :mod:`.airflow_internals`."""
        fields = template_fields_with(self, key, value)
        if fields is not None:
            super().__setattr__("template_fields", fields)
        super().__setattr__(key, value)

    def render_template(
        self, content: Any, context: Any, jinja_env: Any = None, seen_oids: set[int] | None = None
    ) -> Any:
        """Airflow compiles every string of a templated field as a Jinja template (~1 ms each, in
        every task); a string Jinja would render to itself is returned as it is (see
        :func:`.airflow_internals.renders_to_itself`)."""
        if type(content) is str and renders_to_itself(self, content, jinja_env):
            return content
        return super().render_template(content, context, jinja_env, seen_oids)

    # -- labels, runs of earlier tries ----------------------------------------------------------------
    def run_labels(self, context: AirflowContext) -> list[str]:
        ti = context["ti"]
        return [
            *(self.labels or []),
            f"{LABEL_PREFIX}dag_id={ti.dag_id}",
            f"{LABEL_PREFIX}run_id={ti.run_id}",
            f"{LABEL_PREFIX}task_id={ti.task_id}",
            f"{LABEL_PREFIX}map_index={getattr(ti, 'map_index', -1)}",
            f"{LABEL_PREFIX}try_number={ti.try_number}",
        ]

    @staticmethod
    def task_instance_labels(labels: list[str]) -> set[str]:
        """The labels every try of one task instance shares."""
        return {lab for lab in labels if not lab.startswith(f"{LABEL_PREFIX}try_number=")}

    # -- execution ----------------------------------------------------------------------------------
    def task_arguments(self) -> dict[str, Any]:
        from digitalhub_provider.entities.specs import JOB_TASK_FIELDS  # the entities load when a task runs

        values = {a: getattr(self, "task_resources" if a == "resources" else a) for a in JOB_TASK_FIELDS}
        return {a: v for a, v in values.items() if v is not None}

    def use_kubernetes(self, hook: Any) -> bool:
        """``local_execution=False`` runs in a pod; unset, the connection's ``launcher`` decides (default local)."""
        if self.local_execution is not None:
            return not self.local_execution
        return hook.connection_extras.launcher == "kubernetes"

    def _start(self, context: AirflowContext, reentry: bool = False) -> tuple[Any, RunController, Executable, Run]:
        """Connection, function and run: created (after failing the unfinished runs of earlier tries,
        whose workers died), or on Kubernetes adopted (its pod may still run: KubernetesPodOperator
        reattaches to it instead of starting a second one). Back from a deferral, only adopted."""
        from airflow.sdk.exceptions import AirflowException

        from digitalhub_provider.entities import State
        from digitalhub_provider.errors import DigitalHubError
        from digitalhub_provider.hooks.digitalhub import DigitalHubHook
        from digitalhub_provider.sdk.controller import RunController

        # The links Airflow pushes to XCom when the task ends (one Execution API request each): none until
        # a run exists, then the run link with a console URL only (nothing a browser could open without).
        self.operator_extra_links = ()
        dag = context.get("dag") or (self.dag if self.has_dag() else None)
        fileloc = getattr(dag, "fileloc", None)
        self._dag_folder = os.path.dirname(fileloc) if fileloc else None
        hook = DigitalHubHook(self.digitalhub_conn_id)
        ctx = hook.get_context()
        self._ctx = ctx
        controller = RunController(ctx, caller="the Airflow task")
        labels = self.run_labels(context)
        kubernetes = self.use_kubernetes(hook)
        if kubernetes and self.in_process:
            raise AirflowException("in_process=True runs on the local launcher only, and this task runs in a pod")
        try:
            fn = self.resolve_function(ctx)
            unfinished = controller.unfinished(fn, self.task_instance_labels(labels))
            finished = None
            if reentry and not any(r.state == State.RUNNING.value for r in unfinished):
                # The reconciler may have finished this try's run from its RunResult while the task was
                # deferred: that outcome stands.
                finished = next(iter(controller.labelled(fn, set(labels))), None)
                if finished is None or not State(finished.state).final:
                    raise AirflowException("no running DigitalHub run found for this task on re-entry")
            if finished is not None:
                run = finished
                self.log.info("DigitalHub run %s ended %s while the task was deferred", run.key, run.state)
            elif kubernetes and unfinished:
                run = unfinished[0]
                self.log.info("Reattaching to DigitalHub run %s (state %s)", run.key, run.state)
            else:
                for stale in unfinished:
                    # Its runner may have finished (a RunResult): that outcome stands. Otherwise the
                    # worker that followed it is gone, and so is the run.
                    if State(controller.reconcile(stale).state).final:
                        continue
                    stale_try = next(
                        (lab.split("=", 1)[1] for lab in stale.metadata.labels or [] if "try_number=" in lab), "?"
                    )
                    controller.fail_stale(stale, f"the worker running try {stale_try} stopped before the run finished")
                run = controller.create(
                    fn, action=self.action, inputs=self.inputs, parameters=self.parameters, outputs=self.outputs,
                    values=self.values, local_execution=not kubernetes, labels=labels, cache=self.cache,
                    **self.task_arguments(),
                )  # fmt: skip
        except DigitalHubError as exc:
            raise AirflowException(str(exc)) from None
        self._run = run
        self._kubernetes = kubernetes
        self.run_link = self._link(hook, run)
        if self.run_link:
            self.operator_extra_links = (DigitalHubRunLink(),)
        return hook, controller, fn, run

    def make_launcher(
        self,
        hook: Any,
        ctx: Context,
        fn: Executable,
        run: Run,
        context: AirflowContext,
        event: dict[str, Any] | None = None,
    ) -> Launcher:
        """Kubernetes (a pod through KubernetesPodOperator; a service as a Deployment and a Service),
        in this interpreter (see :meth:`runs_in_process`), or a local subprocess."""
        if self._kubernetes:
            from digitalhub_provider.launchers.kubernetes import KubernetesLauncher, KubernetesSettings
            from digitalhub_provider.launchers.pod_evidence import PodEvidence
            from digitalhub_provider.runtimes.registry import BUILD_ACTION, SERVE_ACTION

            k8s = KubernetesSettings.from_extras(hook.connection_extras)
            self._cluster = PodEvidence(k8s)  # what on_kill deletes a service's objects through
            if run.run_kind.action == SERVE_ACTION:
                from digitalhub_provider.launchers.kubernetes_service import KubernetesServiceLauncher

                return KubernetesServiceLauncher(k8s, run_as_root=self.run_as_root)
            if run.run_kind.action == BUILD_ACTION:
                from digitalhub_provider.launchers.kaniko import BuildSettings, KanikoLauncher

                build = BuildSettings.from_extras(hook.connection_extras)
                return KanikoLauncher(self.task_id, k8s, build, context, self.run_as_root, self._cluster.secret_exists)
            return KubernetesLauncher(self.task_id, k8s, context, self.deferrable, self.run_as_root, event)
        if self.runs_in_process(fn, run, hook):
            from digitalhub_provider.launchers.in_process import InProcessLauncher

            return InProcessLauncher()
        from digitalhub_provider.launchers.local import LocalLauncher

        return LocalLauncher(on_line=self._log_line)

    def execute(self, context: AirflowContext) -> dict[str, Any]:
        hook, controller, fn, run = self._start(context)
        files = controller.ctx.run_url(run.id, "")
        self.log.info("DigitalHub run %s (function %s), files in %s", run.key, fn.key, files)
        return self._complete(context, self._launch(hook, controller, fn, run, context))

    def trigger_reentry(self, context: AirflowContext, event: dict[str, Any]) -> dict[str, Any]:
        """Back from KubernetesPodOperator's trigger (deferrable mode): finish the pod, then the run."""
        hook, controller, fn, run = self._start(context, reentry=True)
        return self._complete(context, self._launch(hook, controller, fn, run, context, event))

    def _launch(
        self,
        hook: Any,
        controller: RunController,
        fn: Executable,
        run: Run,
        context: AirflowContext,
        event: dict[str, Any] | None = None,
    ) -> Run:
        import threading

        from digitalhub_provider.entities import State
        from digitalhub_provider.errors import DigitalHubError
        from digitalhub_provider.runtimes.registry import SERVE_ACTION
        from digitalhub_provider.sdk.context import use_context

        with use_context(controller.ctx):
            try:
                launcher = self.make_launcher(hook, controller.ctx, fn, run, context, event)
            except DigitalHubError as exc:  # e.g. in_process=True for a function that cannot
                return controller.transition(run, State.ERROR, str(exc))
            started = controller.submit(fn, run, launcher)
            if started is None:
                return run
            self._proc = started.handle
            if run.run_kind.action == SERVE_ACTION and started.handle.poll() is None:
                controller.release(run)  # ready: it serves on after this task, until stopped
                if self._kubernetes:
                    # Nobody follows a Deployment: the reconciler judges it by the cluster alone.
                    return controller.record(run, follower=None)
                # reaped by this process if it ends while this process lives (dag.test() runs on)
                threading.Thread(target=started.handle.wait, name=f"dh-reap-{run.id}", daemon=True).start()
                return run
            return controller.follow(run, started)

    def _complete(self, context: AirflowContext, run: Run) -> dict[str, Any]:
        """The run's end in the task log: the run's own traceback when it has one (the handler's frames,
        not this process's), then one line: state, message, outputs and results. A run that did not
        complete fails the task with that line, raised without a chained exception."""
        from airflow.sdk.exceptions import AirflowException

        from digitalhub_provider.entities import State
        from digitalhub_provider.runtimes.registry import SERVE_ACTION

        def shown(value: Any) -> str:
            text = repr(value)
            return text if len(text) <= 80 else f"{text[:77]}..."

        status = run.status
        outputs: dict[str, Any] = status.get("outputs") or {}
        results: dict[str, Any] = status.get("results") or {}
        if run.state == State.RUNNING.value and run.run_kind.action == SERVE_ACTION:
            self.log.info("DigitalHub run %s serves at %s", run.key, (status.get("service") or {}).get("url"))
            return {**self.push_xcom(context, run), "service": status.get("service")}
        completed = run.state == State.COMPLETED.value
        summary = f"DigitalHub run {run.key} ended {run.state}"
        if not completed:
            summary += ": " + " ".join(str(status.message or "no message").splitlines())
        summary += "; outputs: " + (", ".join(f"{k}={v}" for k, v in outputs.items()) or "none")
        summary += "; results: " + (", ".join(f"{k}={shown(v)}" for k, v in results.items()) or "none")
        if completed:
            self.log.info("%s", summary)
            return self.push_xcom(context, run)
        traceback = status.get("traceback")
        if traceback:
            self.log.error("Traceback of DigitalHub run %s:\n%s", run.key, str(traceback).rstrip())
        self.log.error("%s", summary)
        raise AirflowException(summary) from None

    def runs_in_process(self, fn: Executable, run: Run, hook: Any = None) -> bool:
        """Whether the run goes inside this task's interpreter: ``in_process=True`` asks for it (an error
        when the function cannot), ``False`` refuses it; unset, a python job without requirements on the
        worker's Python does, unless the connection's ``in_process`` extra is false."""
        from digitalhub_provider.errors import EntityError
        from digitalhub_provider.runtimes.registry import in_process_refusal

        wanted = self.in_process
        if wanted is None and hook is not None:
            wanted = hook.connection_extras.in_process
        if wanted is False:
            return False
        refusal = in_process_refusal(fn.kind, run.run_kind.action, fn.spec)
        if refusal is not None and wanted:
            raise EntityError(f"in_process=True cannot be honoured: {refusal}")
        return refusal is None

    def _log_line(self, line: str) -> None:
        self.log.info("%s", line)

    def push_xcom(self, context: AirflowContext, run: Run) -> dict[str, Any]:
        """One XCom per output name (the entity key) and per result name (the value), plus the summary.
        A result too large for the run's record is in its own XCom once; the summary holds its reference."""
        ti = context["ti"]
        outputs: dict[str, str] = run.status.get("outputs") or {}
        results: dict[str, Any] = run.status.get("results") or {}
        for name, value in outputs.items():
            ti.xcom_push(key=name, value=value)
        for name in results:
            ti.xcom_push(key=name, value=run.result(name))
        self.emit_assets(context, run)
        return {"run_id": run.id, "run_key": run.key, "state": run.state, "outputs": outputs, "results": results}

    def emit_assets(self, context: AirflowContext, run: Run) -> None:
        """One Asset event per output entity, ``digitalhub://{project}/{type}/{name}``, with the entity's
        key and version id and the run's key in its ``extra``: on the task's own outlet when the DAG
        declares that Asset, else through the operator's alias. A declared outlet takes Airflow's direct
        path, which also avoids its alias path's race: two tasks emitting an asset through an alias for
        the first time at once both insert the alias-asset link, and the second task is failed."""
        outputs: dict[str, str] = run.status.get("outputs") or {}
        events = context.get("outlet_events") if outputs else None
        if events is None:
            return
        from airflow.sdk import Asset

        from digitalhub_provider.assets import output_events

        declared = {o.uri: o for o in self.outlets or () if isinstance(o, Asset)}
        alias = events[AssetAlias(OUTPUTS_ALIAS)]
        for uri, extra in output_events(outputs, run.key):
            asset = Asset(uri)
            if asset.uri in declared:
                events[declared[asset.uri]].extra = extra
            else:
                alias.add(asset, extra=extra)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """For Airflow's OpenLineage provider (optional): the run's input and output entities as
        datasets (with their schema for tables) and its DigitalHub run facet (see ``lineage.py``)."""
        from digitalhub_provider.lineage import operator_lineage

        return operator_lineage(self._run, self._ctx)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """As on completion, with the run's error message and traceback."""
        from digitalhub_provider.lineage import operator_lineage

        return operator_lineage(self._run, self._ctx, failed=True)

    def on_kill(self) -> None:
        """Stop the run: STOPPED, its runner killed (process, pod, KFP run) with the runs it started."""
        from digitalhub_provider.sdk.controller import RunController

        if self._run is not None and self._ctx is not None:
            # The cluster too: a service being readied has no status yet to find its objects by.
            pods = getattr(self, "_cluster", None)
            RunController(self._ctx, caller="the Airflow task", pods=pods).stop(self._run)
        elif self._proc is not None:
            self._proc.kill()

    def _link(self, hook: Any, run: Run) -> str:
        """The run in the DigitalHub console named by the connection's ``ui_url``; empty without one."""
        ui = hook.connection_extras.ui_url
        return f"{ui.rstrip('/')}/#/projects/{run.project}/runs/{run.id}" if ui else ""
