"""MlrunJobOperator: a function of the mlrun runtime as an Airflow task.

Importing this module imports neither mlrun nor any data library: mlrun lives only in
its own environment (Python 3.11 + mlrun), where the runner runs.
"""

from __future__ import annotations

from typing import Any

from digitalhub_provider.operators.base import RUN_TEMPLATE_FIELDS, DigitalHubRunOperator

MLRUN_SPEC_FIELDS = ("source", "handler", "image", "tag", "requirements")


class MlrunJobOperator(DigitalHubRunOperator):
    """Run a DigitalHub mlrun function (``action="job"``, or ``"build"``) as an Airflow task.

    Name the function (``project`` + ``function``, or ``function_key``), or give its spec
    (``source={"source": "src/pipeline.py"}`` or ``{"code": ...}`` / ``{"base64": ...}``,
    ``handler``, ...) and it is created when the task runs, with a new version only when the
    spec changed. A relative local ``source["source"]`` is read from the DAG file's folder.
    MLRun runs it locally in the mlrun environment; its artifacts come back as outputs
    (``outputs`` renames them: ``{"mlrun name": "our name"}``) and the MLRun results named
    in ``values`` as results, all through XCom. When the connection names an MLRun API server
    (extra ``mlrun_api``, token in ``mlrun_token``), the run, its project and its artifacts are
    then registered there too (the result ``mlrun_api`` is the server's URL); a failed
    registration fails the task and leaves nothing behind.

    Args:
        source: ``{"source": path or git+https://...#ref, zip+s3://..., zip+file://...,
            http(s)://...}``, ``{"code": "..."}`` or ``{"base64": "..."}`` (+ ``"lang"``); a
            relative local path is read from the DAG file's folder.
        handler: ``function`` (in the file, or ``main.py`` of an archive) or ``module:function``
            (absolute imports from the archive root).
        image: MLRun's own image, kept on the function and passed to MLRun (not the pod's).
        tag: MLRun's image tag.
        requirements: Extra pip packages for the mlrun environment.
        instructions: ``build``: shell steps run in order inside the new environment, after its
            requirements; the build records the environment on a new version of the function.
        **kwargs: The arguments below, and ``BaseOperator``'s (``task_id``, ``retries``, ...).

    Other Parameters:
        project (str): The DigitalHub project of the function and of its runs. Templated.
        function (str | None): The function's name (default: the task id). Templated.
        function_key (str | None): A function's key (``store://project/function/mlrun/name:id``):
            that version, instead of ``function``. Templated.
        action (str | None): ``"job"`` (default) or ``"build"`` (build the mlrun environment
            ahead of time, with ``instructions``; later runs of the function use it).
        inputs (dict[str, Any] | None): ``{mlrun argument: entity key}``: each dataitem, artifact
            or model is given to MLRun as a local file. Templated. An ``Asset("digitalhub://...")``
            gives the entity's latest version and is one of the task's inlets.
        parameters (dict[str, Any] | None): MLRun params, passed to the handler by name.
            Templated.
        outputs (list[str] | dict[str, str] | None): ``{"mlrun artifact key": "our name"}``
            renames, or a list of keys that must be produced; every MLRun artifact becomes an
            output (dataset: a ``table`` dataitem; model: a model; else an artifact). Templated.
        values (list[str] | None): The MLRun results that become run results (all of them when not
            given); the MLRun run record is always the result ``mlrun_run``. Templated.
        local_execution (bool | None): ``True``: the local launcher; ``False``: a pod on
            Kubernetes; unset: the connection's ``launcher`` extra (default local).
        in_process (bool | None): An mlrun function always runs in its own process: leave unset
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

    template_fields = RUN_TEMPLATE_FIELDS
    template_fields_renderers = {"inputs": "json", "parameters": "json"}
    ui_color = "#fde2c8"
    function_kind = "mlrun"
    spec_fields = MLRUN_SPEC_FIELDS
    source_hint = "source={'source' | 'code' | 'base64': ...}"

    def __init__(
        self,
        *,
        source: dict[str, Any] | None = None,
        handler: str | None = None,
        image: str | None = None,
        tag: str | None = None,
        requirements: list[str] | None = None,
        instructions: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instructions = instructions
        self.source = source
        self.handler = handler
        self.image = image
        self.tag = tag
        self.requirements = requirements

    def task_arguments(self) -> dict[str, Any]:
        build = {"instructions": self.instructions} if self.instructions is not None else {}
        return {**super().task_arguments(), **build}

    def has_source(self, spec: dict[str, Any]) -> bool:
        source = spec.get("source")
        return isinstance(source, dict) and bool(source.get("source") or source.get("code") or source.get("base64"))

    def function_spec(self) -> dict[str, Any]:
        spec = super().function_spec()
        source = spec.get("source")
        if isinstance(source, dict) and isinstance(source.get("source"), str) and source["source"]:
            spec["source"] = {**source, "source": self.from_dag_folder(source["source"])}
        return spec
