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

import json
import os
import subprocess
from typing import TYPE_CHECKING, Any

from digitalhub_provider.operators.base import DigitalHubRunOperator
from digitalhub_provider.operators.kfp_task_group import pipeline_task_group

if TYPE_CHECKING:
    from airflow.sdk import Context as AirflowContext

    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.sdk.context import Context

KFP_SPEC_FIELDS = ("code_src", "code", "base64", "handler", "lang", "image", "tag")
TARGET_FILE = "kfp_target.json"  # the runner's side: digitalhub_provider.runtimes.kfp.server
KFP_RUN_FILE = "kfp_run.json"
SERVER_MODULE = "digitalhub_provider.runtimes.kfp.server"


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
        self._python: str | None = None
        self._target: dict[str, Any] | None = None

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
    def server_target(self, ctx: Context, fn: Executable, run: Run) -> dict[str, Any] | None:
        """The KFP server to run on (``None``: kfp.local), with the KFP run of an earlier try to reattach to."""
        from digitalhub_provider.hooks.digitalhub import DigitalHubHook

        hook = DigitalHubHook(self.digitalhub_conn_id)
        hook.get_settings()
        extras = hook.extras or {}
        host = self.kfp_host or extras.get("kfp_host")
        if not host:
            return None
        target: dict[str, Any] = {
            "host": host,
            "namespace": self.kfp_namespace or extras.get("kfp_namespace"),
            "experiment_id": self.kfp_experiment_id or extras.get("kfp_experiment_id"),
            "poll_seconds": self.kfp_poll_interval,
        }
        if self.reattach_on_retry:
            target["reattach_run_id"] = self.earlier_kfp_run(ctx, fn, run, host)
        return target

    def earlier_kfp_run(self, ctx: Context, fn: Executable, run: Run, host: str) -> str | None:
        """The KFP run id recorded on the newest run of an earlier try of this task instance (same host)."""
        from digitalhub_provider.entities import Run as RunEntity
        from digitalhub_provider.operators.base import LABEL_PREFIX

        mine = {lab for lab in run.metadata.labels or [] if not lab.startswith(f"{LABEL_PREFIX}try_number=")}
        found: list[RunEntity] = []
        for data in ctx.metadata.list(fn.project, "run", function_name=fn.name, limit=200):
            other = RunEntity.from_dict(data, ctx)
            if other.id == run.id or not mine <= set(other.metadata.labels or []):
                continue
            if other.status.get("kfp_run_id") and other.status.get("kfp_host") == host:
                found.append(other)
        found.sort(key=lambda r: r.metadata.created or "")
        return str(found[-1].status.get("kfp_run_id")) if found else None

    def _write_target(self, ctx: Context, fn: Executable, run: Run) -> None:
        self._target = self.server_target(ctx, fn, run)
        url = ctx.run_url(run.id, TARGET_FILE)
        store = ctx.data_store(url)
        if self._target is None:
            store.delete(url)
            return
        store.write_bytes(url, json.dumps(self._target).encode())
        again = self._target.get("reattach_run_id")
        self.log.info("KFP API server %s%s", self._target["host"], f", reattaching to KFP run {again}" if again else "")

    # -- launch ---------------------------------------------------------------------------------------------
    def launch(self, ctx: Context, fn: Executable, run: Run, hook: Any = None) -> Run:
        """The local launcher, plus the KFP run's id recorded on the workflow run as soon as it exists."""
        from digitalhub_provider.entities import State
        from digitalhub_provider.errors import DigitalHubError
        from digitalhub_provider.sdk.runs import build_run, finish_run, set_state, start_local, write_runspec

        try:
            self.runs_in_process(fn, run, hook)  # a pipeline never does: in_process=True is an error
            self._python = build_run(run, fn, ctx, log=self.log.info)
            self._write_target(ctx, fn, run)
            url = write_runspec(run, fn, ctx)
        except DigitalHubError as exc:
            return set_state(ctx, run, State.ERROR, str(exc))
        self._proc = start_local(run, self._python, url, ctx, on_line=self._log_line)
        try:
            while True:
                try:
                    code = self._proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    self.record_kfp_run(ctx, run)
        except BaseException as exc:  # execution_timeout, or the task being killed
            self._proc.kill()
            self.terminate_kfp_run(run)
            self.stop_steps(ctx, run)
            finish_run(run, ctx, message=f"the Airflow task was interrupted: {type(exc).__name__}: {exc}")
            raise
        self.record_kfp_run(ctx, run)
        self._stop_if_canceled(ctx, run)
        return finish_run(run, ctx, exit_code=code)

    def launch_kubernetes(self, ctx: Context, fn: Executable, run: Run, context: AirflowContext, hook: Any) -> Run:
        """The workflow's runner in a pod (an image with kfp and this package); KFP server as configured."""
        self._write_target(ctx, fn, run)
        return super().launch_kubernetes(ctx, fn, run, context, hook)

    def record_kfp_run(self, ctx: Context, run: Run) -> None:
        """Copy the KFP run id the runner reported onto the workflow run's status (once)."""
        if self._target is None or run.status.get("kfp_run_id"):
            return
        url = ctx.run_url(run.id, KFP_RUN_FILE)
        store = ctx.data_store(url)
        if not store.exists(url):
            return
        info = json.loads(store.read_bytes(url))
        stored = type(run).from_dict(ctx.metadata.get(run.project, "run", run.id), ctx)
        for target in (run, stored):
            target.status.kfp_run_id = info["kfp_run_id"]  # type: ignore[attr-defined]
            target.status.kfp_host = info["kfp_host"]  # type: ignore[attr-defined]
        ctx.metadata.write(update=[("run", stored.to_dict())])
        self.log.info("KFP run %s on %s%s", info["kfp_run_id"], info["kfp_host"], " (reattached)" * info["reattached"])

    def _stop_if_canceled(self, ctx: Context, run: Run) -> None:
        """A KFP run canceled on the server ends the workflow run STOPPED, not ERROR."""
        from digitalhub_provider.entities import State
        from digitalhub_provider.runtimes.contract import RESULT_FILE
        from digitalhub_provider.sdk.runs import set_state

        url = ctx.run_url(run.id, RESULT_FILE)
        store = ctx.data_store(url)
        if not store.exists(url):
            return
        result = json.loads(store.read_bytes(url))
        stored = ctx.metadata.get(run.project, "run", run.id)
        if result.get("state") == State.STOPPED.value and stored["status"].get("state") != State.STOPPED.value:
            set_state(ctx, run, State.STOPPED, result.get("message") or "the KFP run was canceled")

    def terminate_kfp_run(self, run: Run | None) -> None:
        """Terminate the KFP run through kfp.Client in the kfp environment (best effort)."""
        kfp_run_id = run.status.get("kfp_run_id") if run is not None else None
        if not kfp_run_id or not self._python or not self._target:
            return
        try:
            res = subprocess.run(
                [self._python, "-m", SERVER_MODULE, "terminate", self._target["host"], str(kfp_run_id)],
                capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )  # fmt: skip
            if res.returncode != 0:
                self.log.warning("could not terminate KFP run %s: %s", kfp_run_id, res.stderr.strip()[-500:])
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.log.warning("could not terminate KFP run %s: %s", kfp_run_id, exc)

    def stop_steps(self, ctx: Context, run: Run) -> None:
        from digitalhub_provider.runtimes.kfp.step import stop_step_runs

        for key in stop_step_runs(ctx, run):
            self.log.info("stopped step run %s", key)

    def on_kill(self) -> None:
        """Stop the workflow run and its running steps; terminate the KFP run (its runner does too)."""
        run = self._run
        super().on_kill()
        if run is not None and self._ctx is not None:
            stored = type(run).from_dict(self._ctx.metadata.get(run.project, "run", run.id), self._ctx)
            self.terminate_kfp_run(stored)
            self.stop_steps(self._ctx, stored)


__all__ = ["KfpPipelineOperator", "pipeline_task_group"]
