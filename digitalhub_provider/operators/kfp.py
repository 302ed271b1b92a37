"""KfpPipelineOperator: a workflow of the kfp runtime as one Airflow task.

The workflow's runner runs in the kfp environment (never next to Airflow); it
compiles the pipeline to KFP IR and executes it with ``kfp.local`` or, when
the connection (or the task) names a KFP API server (``kfp_host``), on that
server. Each step is its own DigitalHub run (``step_of`` the workflow run);
XCom gets every step's outputs and results as ``"{step}.{name}"``.

To see every step as an Airflow task of its own instead, render the same
pipeline with :func:`pipeline_task_group`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from digitalhub_provider.operators.base import DigitalHubRunOperator
from digitalhub_provider.operators.kfp_task_group import pipeline_task_group

if TYPE_CHECKING:
    from airflow.sdk import Context as AirflowContext

    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.launchers.base import Launcher
    from digitalhub_provider.sdk.context import Context

KFP_SPEC_FIELDS = ("code_src", "code", "base64", "handler", "lang", "image", "tag")


class KfpPipelineOperator(DigitalHubRunOperator):
    """Run a DigitalHub workflow of kind ``kfp`` (its ``pipeline`` action) as an Airflow task.

    The pipeline is one of:

    - a handler written with the kfp runtime's DSL (``code_src`` / ``code`` / ``base64`` +
      ``handler``; the seed's ``pipeline_context``);
    - a plain kfp ``@dsl.pipeline`` function: ``kfp_pipeline="module:function"``, importable in
      the kfp environment (ship the module with ``code_src``: a file, a zip or a git repository;
      without ``code_src`` the module must be installed there);
    - a precompiled KFP IR YAML package: ``pipeline_package_path="pipeline.yaml"``.

    ``workflow`` / ``workflow_key`` name the workflow (aliases of ``function`` / ``function_key``);
    ``inputs`` (entity keys) and ``parameters`` are the pipeline's arguments. With ``kfp_host``
    (the task's, else the connection's extra) the pipeline runs on that KFP API server; a retry
    reattaches to the KFP run of the earlier try unless it failed; killing the task terminates it.

    Args:
        workflow: The workflow's name (alias of ``function``; default: the task id).
        workflow_key: A workflow's key (alias of ``function_key``): that version.
        code_src: The pipeline's source: a local file (relative paths are read from the DAG
            file's folder), a zip or a git repository.
        code: The source as a string (instead of ``code_src``).
        base64: The source, base64-encoded (instead of ``code_src``).
        handler: The pipeline function written with the DSL (``function`` or
            ``module:function``); not with ``kfp_pipeline`` or ``pipeline_package_path``.
        lang: The source's language (``"yaml"`` for ``pipeline_package_path``).
        image: The image the steps run in on a KFP API server (it needs kfp and this package).
        tag: The image's tag.
        pipeline_package_path: A precompiled KFP IR YAML package, the workflow's source.
            Templated.
        kfp_pipeline: A plain kfp ``@dsl.pipeline`` as ``"module:function"``. Templated.
        kfp_host: A KFP API server to run on (default: the connection's ``kfp_host`` extra;
            neither: ``kfp.local`` in the kfp environment). Templated.
        kfp_namespace: The KFP namespace (default: the connection's ``kfp_namespace``).
        kfp_experiment_id: The KFP experiment (default: the connection's ``kfp_experiment_id``).
            Templated.
        kfp_poll_interval: Seconds between two polls of the KFP run's state.
        reattach_on_retry: A retry reattaches to the KFP run of the earlier try (same host)
            unless that run failed or was canceled.
        action: ``"pipeline"``, the kfp runtime's action.
        **kwargs: The arguments below, and ``BaseOperator``'s (``task_id``, ``retries``, ...).

    Other Parameters:
        project (str): The DigitalHub project of the workflow and of its runs. Templated.
        function (str | None): The workflow's name (same as ``workflow``). Templated.
        function_key (str | None): A workflow's key (same as ``workflow_key``). Templated.
        inputs (dict[str, Any] | None): ``{pipeline argument: entity key}``. Templated. An
            ``Asset("digitalhub://...")`` gives the entity's latest version and is an inlet.
        parameters (dict[str, Any] | None): The pipeline's other arguments, by name. Templated.
        outputs (list[str] | dict[str, str] | None): Kept on the run's spec; the workflow run's
            outputs are its steps' (``"{step}.{name}"``).
        values (list[str] | None): Kept on the run's spec; the workflow run's results are its
            steps' (``"{step}.{name}"``).
        local_execution (bool | None): ``True``: the workflow's runner on the local launcher;
            ``False``: in a pod on Kubernetes; unset: the connection's ``launcher`` extra.
        in_process (bool | None): A pipeline never runs in the task's interpreter: leave unset
            (``True`` ends the run ERROR).
        node_selector (list[dict[str, Any]] | dict[str, str] | None): Task argument: the pod's
            node selector (a dict, or DigitalHub's list of ``{key, value}``).
        volumes (list[dict[str, Any]] | None): Task argument: DigitalHub volumes mounted in the pod
            (``volume_type``: ``persistent_volume_claim``, ``config_map``, ``secret`` or
            ``empty_dir``; ``name``, ``mount_path``, ``spec``).
        resources (dict[str, Any] | None): Task argument: ``{"cpu": "500m", "mem": {"requests":
            "256Mi", "limits": "1Gi"}, "gpu": {"limits": "1"}}``; a plain value is request and limit.
        affinity (dict[str, Any] | None): Task argument: the pod's affinity (snake_case or
            camelCase keys).
        tolerations (list[dict[str, Any]] | None): Task argument: the pod's tolerations
            (snake_case or camelCase keys).
        envs (list[dict[str, Any]] | None): Task argument: environment variables,
            ``[{"name": ..., "value": ...}]``. Templated.
        secrets (list[str] | None): Task argument: names of Kubernetes secrets, injected into the
            pod with ``envFrom`` (their values never in the spec).
        profile (str | None): Task argument: a named template of task arguments from the
            connection's ``profiles`` extra.
        backoff_limit (int | None): Airflow's ``retries``, with exponential backoff
            (``retry_exponential_backoff=2.0``), unless the DAG sets ``retries`` itself.
        labels (list[str] | None): Extra labels for the run (the task instance's ``airflow.*``
            labels are always added).
        cache (bool | dict[str, Any] | None): ``True`` (or ``{"max_age": seconds}``): reuse the outputs and
            results of an identical earlier COMPLETED run (same function version, inputs, parameters and
            task) instead of executing; its XCom is the same. See the SDK guide, "Run caching".
        digitalhub_conn_id (str): The ``digitalhub`` connection; without one defined, the
            embedded default under ``$DIGITALHUB_HOME``.
        deferrable (bool): Kubernetes only: wait for the pod in Airflow's triggerer.
        run_as_root (bool): Kubernetes only: run the pod as root (default: user 1000, non-root).
    """

    template_fields = (
        "project", "function", "function_key", "inputs", "parameters", "envs",
        "pipeline_package_path", "kfp_pipeline", "kfp_host", "kfp_experiment_id",
    )  # fmt: skip
    template_fields_renderers = {"inputs": "json", "parameters": "json"}
    ui_color = "#e8def8"
    entity_type = "workflow"
    function_kind = "kfp"
    spec_fields = KFP_SPEC_FIELDS

    def __init__(
        self,
        *,
        workflow: str | None = None,
        workflow_key: str | None = None,
        code_src: str | None = None,
        code: str | None = None,
        base64: str | None = None,
        handler: str | None = None,
        lang: str | None = None,
        image: str | None = None,
        tag: str | None = None,
        pipeline_package_path: str | None = None,
        kfp_pipeline: str | None = None,
        kfp_host: str | None = None,
        kfp_namespace: str | None = None,
        kfp_experiment_id: str | None = None,
        kfp_poll_interval: float = 5.0,
        reattach_on_retry: bool = True,
        action: str | None = "pipeline",
        **kwargs: Any,
    ) -> None:
        for alias, name in (("workflow", "function"), ("workflow_key", "function_key")):
            value = workflow if alias == "workflow" else workflow_key
            if value is not None:
                if kwargs.get(name) is not None:
                    raise ValueError(f"give {alias} or {name}, not both")
                kwargs[name] = value
        ways = [w for w, v in (("pipeline_package_path", pipeline_package_path), ("kfp_pipeline", kfp_pipeline)) if v]
        if len(ways) > 1 or (ways and (code or base64)):
            raise ValueError(f"give one pipeline: {' or '.join([*ways, 'code/base64'])}")
        if pipeline_package_path and (code_src or handler):
            raise ValueError("pipeline_package_path is the workflow's source: do not give code_src or handler with it")
        if kfp_pipeline and handler:
            raise ValueError("kfp_pipeline='module:function' is the workflow's handler: do not give handler with it")
        super().__init__(action=action, **kwargs)
        self.code_src = code_src
        self.code = code
        self.base64 = base64
        self.handler = handler
        self.lang = lang
        self.image = image
        self.tag = tag
        self.pipeline_package_path = pipeline_package_path
        self.kfp_pipeline = kfp_pipeline
        self.kfp_host = kfp_host
        self.kfp_namespace = kfp_namespace
        self.kfp_experiment_id = kfp_experiment_id
        self.kfp_poll_interval = kfp_poll_interval
        self.reattach_on_retry = reattach_on_retry

    # -- the workflow -----------------------------------------------------------------------------
    def function_spec(self) -> dict[str, Any]:
        spec = super().function_spec()
        if self.pipeline_package_path:
            spec["code_src"], spec["lang"] = self.pipeline_package_path, spec.get("lang") or "yaml"
        if self.kfp_pipeline:
            module, _, func = self.kfp_pipeline.partition(":")
            if not module or not func:
                from digitalhub_provider.errors import EntityError

                raise EntityError(f"kfp_pipeline must be 'module:function', got {self.kfp_pipeline!r}")
            spec["handler"] = self.kfp_pipeline
            if not self.has_source(spec):  # the module is installed in the kfp environment
                spec["code"] = f"from {module} import {func}  # a kfp pipeline importable in the kfp environment\n"
                spec["handler"] = func
        if spec.get("code_src"):
            spec["code_src"] = self.from_dag_folder(spec["code_src"])
        return spec

    # -- where the pipeline runs ---------------------------------------------------------------------
    def server_target(self, hook: Any, ctx: Context, fn: Executable, run: Run) -> dict[str, Any] | None:
        """The KFP server to run on (``None``: kfp.local), with the KFP run of an earlier try to reattach to."""
        extras = hook.connection_extras
        host = self.kfp_host or extras.kfp_host
        if not host:
            return None
        target: dict[str, Any] = {
            "host": host,
            "namespace": self.kfp_namespace or extras.kfp_namespace,
            "experiment_id": self.kfp_experiment_id or extras.kfp_experiment_id,
            "poll_seconds": self.kfp_poll_interval,
        }
        if self.reattach_on_retry:
            target["reattach_run_id"] = self.earlier_kfp_run(ctx, fn, run, host)
        return target

    def earlier_kfp_run(self, ctx: Context, fn: Executable, run: Run, host: str) -> str | None:
        """The KFP run id recorded on the newest run of an earlier try of this task instance (same host)."""
        from digitalhub_provider.entities import Run as RunEntity

        mine = self.task_instance_labels(run.metadata.labels or [])
        found: list[RunEntity] = []
        for data in ctx.metadata.list(fn.project, "run", function_name=fn.name, limit=200):
            other = RunEntity.from_dict(data, ctx)
            if other.id == run.id or not mine <= set(other.metadata.labels or []):
                continue
            if other.status.get("kfp_run_id") and other.status.get("kfp_host") == host:
                found.append(other)
        found.sort(key=lambda r: r.metadata.created or "")
        return str(found[-1].status.get("kfp_run_id")) if found else None

    # -- launch ---------------------------------------------------------------------------------------------
    def make_launcher(
        self,
        hook: Any,
        ctx: Context,
        fn: Executable,
        run: Run,
        context: AirflowContext,
        event: dict[str, Any] | None = None,
    ) -> Launcher:
        """The runner's launcher (local, or a pod), as the client of the KFP server when there is one."""
        from digitalhub_provider.launchers.kfp_server import KfpServerLauncher

        inner = super().make_launcher(hook, ctx, fn, run, context, event)  # a pipeline never runs in process
        return KfpServerLauncher(inner, self.server_target(hook, ctx, fn, run), log=self._log_line)


__all__ = ["KfpPipelineOperator", "pipeline_task_group"]
