"""PythonRuntimeOperator: a function of the python runtime as an Airflow task."""

from __future__ import annotations

import sys
from typing import Any

from digitalhub_provider.operators.base import RUN_TEMPLATE_FIELDS, DigitalHubRunOperator

PYTHON_SPEC_FIELDS = (
    "code_src", "code", "base64", "handler", "init_function", "python_version", "lang", "image", "base_image",
    "requirements",
)  # fmt: skip


class PythonRuntimeOperator(DigitalHubRunOperator):
    """Run a DigitalHub python function (``action="job"``, ``"build"`` or ``"serve"``) as an Airflow task.

    ``action="serve"`` returns once the service answers its readiness probe; it serves on after the
    task ends, its run key and URL in the task's XCom (``return_value``: ``run_key``, ``service``),
    until :class:`~digitalhub_provider.operators.stop.DigitalHubStopRunOperator` (a teardown task)
    or a kill of this task stops it.

    Name the function (``project`` + ``function``, or ``function_key``), or give its spec
    (``code_src`` / ``code`` / ``base64``, ``handler``, ...) and it is created when the task
    runs, with a new version only when the spec changed. A relative ``code_src`` is read
    from the DAG file's folder. The run's outputs and results come back through XCom.

    A function without requirements on the worker's Python runs inside this task's interpreter
    (``in_process``, unset: when it can; ``False``: always a subprocess; ``True``: required), with
    the same RunSpec, RunResult, run log, kill and timeout behaviour as in a subprocess.

    The function's spec is never templated (source code has braces of its own); the run's
    arguments marked *Templated* are.

    Args:
        code_src: The source: a local file (a relative path is read from the DAG file's folder),
            ``git+https://host/owner/repo.git#ref``, ``zip+s3://bucket/key.zip``,
            ``zip+file:///path.zip`` or an ``http(s)://`` file.
        code: The source as a string (instead of ``code_src``).
        base64: The source, base64-encoded (instead of ``code_src``).
        handler: ``function`` (in the source file, or ``main.py`` of an archive) or
            ``module:function``.
        init_function: DigitalHub's ``init_function``, kept on the spec (a job does not call it).
        python_version: ``"PYTHON3_10"`` to ``"PYTHON3_13"`` (default: the worker's Python);
            another version than the worker's runs in a cached virtualenv.
        lang: The source's language, kept on the spec.
        image: The pod's image on Kubernetes.
        base_image: The pod's image on Kubernetes when ``image`` is not set.
        requirements: pip requirements, installed in a cached virtualenv for the function.
        replicas: ``serve``: the service's worker processes on the local launcher, its pods on
            Kubernetes (default 1).
        service_type: ``serve``: ``ClusterIP``, ``NodePort`` or ``LoadBalancer`` (Kubernetes).
        service_name: ``serve``: the service's name (a DNS label).
        instructions: ``build``: shell steps run in order inside the new environment, after its
            requirements (a failing one fails the build with its output). The build records the
            environment on a new version of the function (``spec.image``), on which later runs go.
        **kwargs: The arguments below, and ``BaseOperator``'s (``task_id``, ``retries``, ...).

    Other Parameters:
        project (str): The DigitalHub project of the function and of its runs. Templated.
        function (str | None): The function's name (default: the task id). Templated.
        function_key (str | None): A function's key (``store://project/function/python/name:id``):
            that version, instead of ``function``. Templated.
        action (str | None): ``"job"`` (default), ``"build"`` (build the function's environment
            ahead of time) or ``"serve"`` (the handler as an HTTP service, see above).
        inputs (dict[str, Any] | None): ``{argument: entity key}``: dataitems, artifacts and models
            given to the handler as objects (an upstream task's ``output["name"]`` fits). Templated.
            An ``Asset("digitalhub://...")`` instead of a key gives the entity's latest version, and
            the Asset becomes one of the task's inlets.
        parameters (dict[str, Any] | None): Values given to the handler by name. Templated.
        outputs (list[str] | dict[str, str] | None): Names for the handler's return values (a
            list, when the handler does not name them with ``@handler(outputs=...)``), or
            ``{returned name: our name}`` renames. Templated.
        values (list[str] | None): Result names, kept on the run's spec (the python runtime keeps
            every result). Templated.
        local_execution (bool | None): ``True``: the local launcher; ``False``: a pod on
            Kubernetes; unset: the connection's ``launcher`` extra (default local).
        in_process (bool | None): Local launcher only. Unset: a python job without requirements
            on the worker's Python runs inside the task's interpreter, anything else in a
            subprocess (the connection extra ``in_process: false`` turns this off); ``False``:
            always a subprocess; ``True``: inside the task, or the run ends ERROR (nothing built)
            when the function cannot.
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
    ui_color = "#d6e9f8"
    spec_fields = PYTHON_SPEC_FIELDS

    def __init__(
        self,
        *,
        code_src: str | None = None,
        code: str | None = None,
        base64: str | None = None,
        handler: str | None = None,
        init_function: str | None = None,
        python_version: str | None = None,
        lang: str | None = None,
        image: str | None = None,
        base_image: str | None = None,
        requirements: list[str] | None = None,
        replicas: int | None = None,
        service_type: str | None = None,
        service_name: str | None = None,
        instructions: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instructions = instructions
        self.replicas = replicas
        self.service_type = service_type
        self.service_name = service_name
        self.code_src = code_src
        self.code = code
        self.base64 = base64
        self.handler = handler
        self.init_function = init_function
        self.python_version = python_version
        self.lang = lang
        self.image = image
        self.base_image = base_image
        self.requirements = requirements

    def task_arguments(self) -> dict[str, Any]:
        serving = {"replicas": self.replicas, "service_type": self.service_type, "service_name": self.service_name}
        own = {**serving, "instructions": self.instructions}
        return {**super().task_arguments(), **{k: v for k, v in own.items() if v is not None}}

    def function_spec(self) -> dict[str, Any]:
        spec = super().function_spec()
        if self.has_source(spec):
            spec.setdefault("python_version", f"PYTHON3_{sys.version_info.minor}")
        if spec.get("code_src"):
            spec["code_src"] = self.from_dag_folder(spec["code_src"])
        return spec
