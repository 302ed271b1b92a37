"""The Kubernetes launcher: the runner in a pod, through KubernetesPodOperator.

Composition rather than subclassing: one operator per runtime takes a launcher
strategy (local or Kubernetes), so the runtime operators stay one class each and
KubernetesPodOperator keeps the pod's whole life (create, log streaming,
reattach on retry, deferral, delete on kill), unmodified. We call its
``execute_sync`` / ``execute_async`` / ``trigger_reentry`` directly: calling
``execute`` from inside another operator's ``execute`` is flagged by Airflow's
nested-operator safeguard.

The pod runs ``python -m digitalhub_provider.runtimes <RunSpec URL>``; the
RunResult comes back through the data store (S3), so no exec into the pod is
needed. Credentials reach the pod only as references to a Kubernetes secret.
A service (the serve action) is no pod that ends: it is a Deployment and a Service
(:mod:`.kubernetes_service`), from the same pod template (:func:`.k8s_spec.pod_template`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from digitalhub_provider.config import (
    ENV_DATA_URL,
    ENV_METADATA_PASSWORD,
    ENV_METADATA_URL,
    ENV_MLRUN_API,
    ENV_MLRUN_TOKEN,
    ENV_S3_ENDPOINT,
    ENV_S3_KEY,
    ENV_S3_REGION,
    ENV_S3_SECRET,
    ENV_TEE_LOGS,
    Settings,
    without_password,
)
from digitalhub_provider.entities.specs import POD_FIELDS
from digitalhub_provider.errors import EntityError
from digitalhub_provider.launchers.base import Handle, Launcher, RunnerLost
from digitalhub_provider.launchers.k8s_spec import pod_manifest
from digitalhub_provider.runtimes.contract import ENV_RUNSPEC, INLINE_RUNSPEC_MAX, RUNSPEC_FILE
from digitalhub_provider.runtimes.registry import BUILD_ACTION, LOCAL_IMAGE_SCHEME, SERVE_ACTION, environment_of

if TYPE_CHECKING:
    from digitalhub_provider.connection_extras import ConnectionExtras
    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.runtimes.contract import RunSpec
    from digitalhub_provider.stores.context import Context

RUNNER_COMMAND = ["python", "-m", "digitalhub_provider.runtimes"]
DEFAULT_IMAGE = "digitalhub-runtime-{runtime}:py{python}"
LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class KubernetesSettings:
    """The Kubernetes part of a ``digitalhub`` connection's extras."""

    namespace: str = "default"
    service_account: str | None = None
    kubernetes_conn_id: str | None = None
    config_file: str | None = None
    in_cluster: bool | None = None
    cluster_context: str | None = None
    default_image: str = DEFAULT_IMAGE
    credentials_secret: str | None = None
    profiles: dict[str, Any] = field(default_factory=dict)
    startup_timeout_seconds: int = 300
    gpu_resource: str = "nvidia.com/gpu"
    operator_kwargs: dict[str, Any] = field(default_factory=dict)  # passed on to KubernetesPodOperator

    @classmethod
    def from_extras(cls, extras: ConnectionExtras | dict[str, Any]) -> KubernetesSettings:
        """From the connection's typed extras (``hook.connection_extras``); a raw extra dict is typed first."""
        from digitalhub_provider.connection_extras import ConnectionExtras

        x = extras if isinstance(extras, ConnectionExtras) else ConnectionExtras.from_dict(extras)
        defaults = cls()
        return cls(
            namespace=x.namespace or defaults.namespace,
            service_account=x.service_account,
            kubernetes_conn_id=x.kubernetes_conn_id,
            config_file=x.kube_config_path,
            in_cluster=x.in_cluster,
            cluster_context=x.cluster_context,
            default_image=defaults.default_image if x.default_image is None else x.default_image,
            credentials_secret=x.credentials_secret,
            profiles=dict(x.profiles),
            startup_timeout_seconds=x.startup_timeout_seconds or defaults.startup_timeout_seconds,
            gpu_resource=x.gpu_resource or defaults.gpu_resource,
            operator_kwargs=dict(x.pod_operator_kwargs),
        )


def label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends."""
    return LABEL_VALUE.sub("-", text)[:63].strip("-_.") or "x"


def runner_env(settings: Settings, k8s: KubernetesSettings) -> list[dict[str, Any]]:
    """Where the stores are (plain) and how to reach them (references to a Kubernetes secret)."""
    if not settings.data_url.startswith("s3://"):
        raise EntityError(
            f"the Kubernetes launcher needs an S3 data store that pods can reach; the connection's data store is "
            f"{settings.data_url!r}"
        )
    metadata_url, password = without_password(settings.metadata_url)
    env: list[dict[str, Any]] = [
        {"name": ENV_DATA_URL, "value": settings.data_url},
        {"name": ENV_METADATA_URL, "value": metadata_url},
        {"name": ENV_TEE_LOGS, "value": "1"},
    ]
    if settings.s3_endpoint_url:
        env.append({"name": ENV_S3_ENDPOINT, "value": settings.s3_endpoint_url})
    if settings.s3_region:
        env.append({"name": ENV_S3_REGION, "value": settings.s3_region})
    if settings.mlrun_api:
        if urlsplit(settings.mlrun_api).password is not None:
            raise EntityError(
                "the connection's mlrun_api URL holds a password: name the server without credentials and put its "
                "token in mlrun_token (pods get it from the credentials_secret)"
            )
        env.append({"name": ENV_MLRUN_API, "value": settings.mlrun_api})
    secrets = [
        (ENV_S3_KEY, settings.s3_access_key_id),
        (ENV_S3_SECRET, settings.s3_secret_access_key),
        (ENV_METADATA_PASSWORD, password),
        (ENV_MLRUN_TOKEN, settings.mlrun_token),
    ]
    for name, value in secrets:
        if not value:
            continue
        if not k8s.credentials_secret:
            raise EntityError(
                "the connection holds credentials but names no credentials_secret: create a Kubernetes secret with "
                f"the keys {ENV_S3_KEY}, {ENV_S3_SECRET} (and {ENV_METADATA_PASSWORD}, {ENV_MLRUN_TOKEN}) and name it "
                "in the connection; "
                "credential values are never written into pod specs"
            )
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": k8s.credentials_secret, "key": name}}})
    return env


def image_for(fn: Executable, k8s: KubernetesSettings) -> str:
    """The image of a pod running ``fn``: what its build made, its ``image``, its ``base_image``, or the
    connection's runtime image for its Python."""
    spec = fn.spec
    if str(spec.get("image") or "").startswith(LOCAL_IMAGE_SCHEME):
        raise EntityError(
            f"function version {fn.key} was built locally ({spec['image']}): its environment is a virtualenv of "
            "the host that built it, not an image; build it on Kubernetes to run it in a pod"
        )
    # An mlrun function's image and tag are MLRun's own (where MLRun would run it on its cluster);
    # the pod runs our runner, from the mlrun runtime image (images/mlrun/Dockerfile). An image a build
    # made (pinned by its digest, FROM that runtime image) holds the runner too: the pod runs on it.
    built = "@sha256:" in str(spec.get("image") or "")
    if spec.get("image") and (fn.kind != "mlrun" or built):
        return str(spec["image"]) + (f":{spec['tag']}" if spec.get("tag") and ":" not in str(spec["image"]) else "")
    if spec.get("base_image"):
        return str(spec["base_image"])
    return runtime_image(fn, k8s)


def runtime_image(fn: Executable, k8s: KubernetesSettings) -> str:
    """The connection's runtime image for ``fn``'s runtime and Python (its ``default_image`` pattern), or ""."""
    if not k8s.default_image:
        return ""
    python_version, _ = environment_of(fn.kind, fn.spec)
    return k8s.default_image.format(runtime=fn.kind, python=python_version.removeprefix("PYTHON").replace("_", "."))


def run_labels(run: Run, fn: Executable) -> dict[str, str]:
    """The labels of every object a run makes on the cluster: ``digitalhub.run`` is how the reconciler
    and a stop find them."""
    return {
        "digitalhub.project": label_value(run.project),
        "digitalhub.function": label_value(fn.name),
        "digitalhub.run": run.id,
    }


def run_annotations(run: Run, fn: Executable) -> dict[str, str]:
    return {"digitalhub/run": run.key, "digitalhub/function": fn.key}


def run_manifest(
    run: Run,
    fn: Executable,
    runspec_url: str,
    settings: Settings,
    k8s: KubernetesSettings,
    run_as_root: bool = False,
    runspec: str | None = None,
) -> dict[str, Any]:
    """The pod that runs ``run`` (validated; raises :class:`EntityError` before anything is created).

    ``runspec`` (the RunSpec's JSON) goes inline into the pod's environment when it is small."""
    task = {k: v for k, v in run.spec.items() if k in POD_FIELDS}
    env = runner_env(settings, k8s)
    if runspec is not None and len(runspec) <= INLINE_RUNSPEC_MAX:
        env.append({"name": ENV_RUNSPEC, "value": runspec})
    return pod_manifest(
        name=f"dh-{label_value(fn.name)[:30].lower().strip('-.') or 'run'}-{run.id[:12]}",
        namespace=k8s.namespace,
        image=image_for(fn, k8s),
        command=list(RUNNER_COMMAND),
        args=[runspec_url],
        env=env,
        task=task,
        labels=run_labels(run, fn),
        annotations=run_annotations(run, fn),
        service_account=k8s.service_account,
        profiles=k8s.profiles,
        run_as_root=run_as_root,
        gpu_resource=k8s.gpu_resource,
    )


def pod_manifest_for_run(
    run: Run,
    fn: Executable,
    ctx: Context,
    k8s: KubernetesSettings,
    run_as_root: bool = False,
    runspec: str | None = None,
) -> dict[str, Any]:
    """The manifest for ``run``, with the RunSpec at its usual place on the context's data store."""
    if run.run_kind.action == BUILD_ACTION:  # an image build is Kaniko's pod (launchers.kaniko), not the runner's
        raise EntityError(
            f"the {BUILD_ACTION} action runs on Kubernetes as a Kaniko pod (launchers.kaniko.KanikoLauncher)"
        )
    if run.run_kind.action == SERVE_ACTION:  # a service does not end: it is no pod for KubernetesPodOperator
        raise EntityError(
            f"the {SERVE_ACTION} action runs on Kubernetes as a Deployment and a Service "
            "(launchers.kubernetes_service.KubernetesServiceLauncher), not as a pod"
        )
    url = ctx.run_url(run.id, RUNSPEC_FILE)
    return run_manifest(run, fn, url, ctx.settings, k8s, run_as_root=run_as_root, runspec=runspec)


def pod_operator(task_id: str, manifest: dict[str, Any], k8s: KubernetesSettings, deferrable: bool = False) -> Any:
    """A KubernetesPodOperator for ``manifest`` (deletes the pod when done).

    Reattaching on retry is KubernetesPodOperator's default: ``durable`` on Airflow 3.3+ (the pod's
    identity is kept in the task state store), label search (``reattach_on_restart``) below.
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    container = manifest["spec"]["containers"][0]
    kwargs: dict[str, Any] = {
        "task_id": task_id,
        "name": manifest["metadata"]["name"],
        "namespace": manifest["metadata"]["namespace"],
        "image": container["image"],
        "cmds": container.get("command") or [],  # none: the image's entrypoint (Kaniko's)
        "arguments": container["args"],
        "labels": manifest["metadata"]["labels"],
        "annotations": manifest["metadata"]["annotations"],
        "full_pod_spec": PodGenerator.deserialize_model_dict(manifest),
        "get_logs": True,
        "on_finish_action": "delete_pod",
        "deferrable": deferrable,
        "do_xcom_push": False,
        "log_events_on_failure": True,
        "startup_timeout_seconds": k8s.startup_timeout_seconds,
        "random_name_suffix": True,
    }
    if k8s.kubernetes_conn_id:
        kwargs["kubernetes_conn_id"] = k8s.kubernetes_conn_id
    if k8s.config_file:
        kwargs["config_file"] = k8s.config_file
    if k8s.in_cluster is not None:
        kwargs["in_cluster"] = k8s.in_cluster
    if k8s.cluster_context:
        kwargs["cluster_context"] = k8s.cluster_context
    return KubernetesPodOperator(**{**kwargs, **k8s.operator_kwargs})


def final_pod_dict(kpo: Any, context: Any = None) -> dict[str, Any]:
    """The pod exactly as KubernetesPodOperator will create it, as a dictionary (for schema checks)."""
    from kubernetes.client import ApiClient

    pod = kpo.build_pod_request_obj(context, dry_run=True)
    return ApiClient().sanitize_for_serialization(pod)


class KubernetesLauncher(Launcher):
    """The runner in a pod, through KubernetesPodOperator, in the Airflow task that ``context`` is
    of. ``event`` is the trigger's event when the task comes back from a deferral."""

    name = "kubernetes"

    def __init__(
        self,
        task_id: str,
        k8s: KubernetesSettings,
        context: Any,
        deferrable: bool = False,
        run_as_root: bool = False,
        event: dict[str, Any] | None = None,
    ) -> None:
        self.task_id = task_id
        self.k8s = k8s
        self.context = context
        self.deferrable = deferrable
        self.run_as_root = run_as_root
        self.event = event
        self.manifest: dict[str, Any] | None = None  # checked by prepare, started by start
        self.pod_operator: Any = None  # the KubernetesPodOperator of the last start or reattach

    def prepare(self, fn: Executable, run: Run, ctx: Context) -> str:
        """Checks the pod (every task argument) before anything is created; the environment is the image."""
        self.manifest = pod_manifest_for_run(run, fn, ctx, self.k8s, run_as_root=self.run_as_root)
        return f"image {self.manifest['spec']['containers'][0]['image']}"

    def inline_runspec(self, spec_json: bytes) -> bool:
        return len(spec_json) <= INLINE_RUNSPEC_MAX

    def _start_pod_operator(self, manifest: dict[str, Any]) -> Any:
        self.pod_operator = pod_operator(self.task_id, manifest, self.k8s, deferrable=self.deferrable)
        return self.pod_operator

    def start(self, spec: RunSpec, run: Run, ctx: Context) -> PodHandle:
        """The prepared pod, with the RunSpec inline in its environment when it is small."""
        if self.manifest is None:
            raise RuntimeError("KubernetesLauncher.start before prepare")
        runspec = spec.to_json().decode()
        if len(runspec) <= INLINE_RUNSPEC_MAX:
            self.manifest["spec"]["containers"][0]["env"].append({"name": ENV_RUNSPEC, "value": runspec})
        return PodHandle(self._start_pod_operator(self.manifest), self.context, self.deferrable)

    def reattach(self, fn: Executable, run: Run, ctx: Context) -> PodHandle:
        """KubernetesPodOperator finds the pod of the earlier attempt (or, back from a deferral, takes
        the trigger's event); a pod that is gone is started again from the stored RunSpec."""
        manifest = pod_manifest_for_run(run, fn, ctx, self.k8s, run_as_root=self.run_as_root)
        return PodHandle(self._start_pod_operator(manifest), self.context, self.deferrable, self.event)

    def is_deferral(self, exc: BaseException) -> bool:
        from airflow.providers.common.compat.sdk import TaskDeferred

        return isinstance(exc, TaskDeferred)


class PodHandle(Handle):
    def __init__(self, kpo: Any, context: Any, deferrable: bool, event: dict[str, Any] | None = None) -> None:
        self.kpo = kpo
        self.context = context
        self.deferrable = deferrable
        self.event = event
        self.status: dict[str, Any] = {"launcher": "kubernetes", "pod": kpo.name, "namespace": kpo.namespace}
        self.exit_code: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """Follows the pod with KubernetesPodOperator (its log streamed to the task's), or defers to its
        trigger; ``timeout`` is the task's own (execution_timeout)."""
        try:
            if self.event is not None:
                self.kpo.trigger_reentry(self.context, self.event)
            elif self.deferrable:
                self.kpo.execute_async(self.context)
            else:
                self.kpo.execute_sync(self.context)
        except Exception as exc:  # the pod failed, or could not be followed
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RunnerLost(f"the pod failed before writing a result: {first}") from exc
        self.exit_code = 0
        return 0

    def poll(self) -> int | None:
        return self.exit_code

    def kill(self) -> None:
        self.kpo.on_kill()  # deletes the pod
