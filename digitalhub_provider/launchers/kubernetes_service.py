"""The serve action on Kubernetes: a Deployment and a Service, through the cncf-kubernetes provider's hook.

KubernetesPodOperator follows pods that end; a service does not end, so its objects are made with
the Kubernetes client of ``KubernetesHook`` (the cluster the connection names, as for job pods):

- a Deployment ``{function}-{service_name}`` (``service_name`` defaults to the run id's first 8
  characters) with ``replicas`` pods, each running the runner's serve mode (one worker per pod:
  concurrency comes from the replicas) from the same pod template as a job's pod (image, resources,
  node selector, envs, secrets by reference, volumes, profile, non-root unless ``run_as_root``),
  a containerPort ``http`` and a readiness probe on ``SERVICE_READY_PATH``;
- a Service of the same name (``service_type`` ClusterIP, NodePort or LoadBalancer) in front of it.

Both, and the pods, carry the label ``digitalhub.run=<run id>`` (what the reconciler and a stop find
them by). The run goes RUNNING once the Deployment reports a ready replica; ``status.service`` is
the Service's in-cluster URL. Stopping the run deletes both objects (:mod:`.pod_evidence`).
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import TYPE_CHECKING, Any

from digitalhub_provider.entities.specs import POD_FIELDS
from digitalhub_provider.errors import EntityError, RunError
from digitalhub_provider.launchers.base import Handle, Launcher, RunnerLost
from digitalhub_provider.launchers.k8s_spec import _check_name, pod_template
from digitalhub_provider.launchers.kubernetes import RUNNER_COMMAND, image_for, run_annotations, run_labels, runner_env
from digitalhub_provider.launchers.pod_evidence import RUN_LABEL, PodEvidence, cluster_access, runner_ended
from digitalhub_provider.runtimes.contract import (
    ENV_RUNSPEC,
    ENV_SERVICE_PORT,
    INLINE_RUNSPEC_MAX,
    POD_SERVICE_PORT,
    RESULT_FILE,
    RUNSPEC_FILE,
    SERVICE_READY_PATH,
)

if TYPE_CHECKING:
    from digitalhub_provider.config import Settings
    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings
    from digitalhub_provider.runtimes.contract import RunSpec
    from digitalhub_provider.stores.context import Context

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")  # as entities.specs.runs checks them
PORT_NAME = "http"
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # a Service's name


def object_name(fn_name: str, run: Run) -> str:
    """``{function}-{service_name}``: the Deployment's and the Service's name (a DNS-1035 label)."""
    given = run.spec.get("service_name") or run.id[:8]
    function = re.sub(r"[^a-z0-9-]+", "-", fn_name.lower()).strip("-") or "service"
    name = f"{function}-{given}"
    if not name[0].isalpha():
        name = f"s-{name}"  # a Service's name starts with a letter
    name = name[:63].rstrip("-")
    if not DNS_1035.match(name):
        raise EntityError(f"invalid service name {name!r} (from function {fn_name!r}, service_name {given!r})")
    return name


def service_settings(run: Run) -> tuple[int, str, int]:
    """``replicas``, ``service_type`` and the port of a service's run, checked (the run's own checks
    come first; a run made elsewhere is checked here before anything is created)."""
    replicas = run.spec.get("replicas")
    replicas = 1 if replicas is None else replicas
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise EntityError(f"replicas must be 1 or more for a service, got {replicas!r}")
    service_type = run.spec.get("service_type") or "ClusterIP"
    if service_type not in SERVICE_TYPES:
        raise EntityError(f"service_type must be one of {', '.join(SERVICE_TYPES)}, got {service_type!r}")
    port = int(run.spec.get("port") or POD_SERVICE_PORT)
    return replicas, service_type, port


def service_manifests(
    run: Run,
    fn: Executable,
    runspec_url: str,
    settings: Settings,
    k8s: KubernetesSettings,
    run_as_root: bool = False,
    runspec: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment and the Service of ``run`` (validated; raises :class:`EntityError` before
    anything is created). ``runspec`` (the RunSpec's JSON) goes inline when it is small."""
    replicas, service_type, port = service_settings(run)
    name = object_name(fn.name, run)
    env = [*runner_env(settings, k8s), {"name": ENV_SERVICE_PORT, "value": str(port)}]
    if runspec is not None and len(runspec) <= INLINE_RUNSPEC_MAX:
        env.append({"name": ENV_RUNSPEC, "value": runspec})
    labels = run_labels(run, fn)
    template = pod_template(
        image=image_for(fn, k8s),
        command=list(RUNNER_COMMAND),
        args=[runspec_url],
        env=env,
        task={k: v for k, v in run.spec.items() if k in POD_FIELDS},
        labels=labels,
        annotations=run_annotations(run, fn),
        service_account=k8s.service_account,
        profiles=k8s.profiles,
        run_as_root=run_as_root,
        gpu_resource=k8s.gpu_resource,
        restart_policy="Always",  # the only policy a Deployment's pods may have
    )
    container = template["spec"]["containers"][0]
    container["ports"] = [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}]
    container["readinessProbe"] = {
        "httpGet": {"path": SERVICE_READY_PATH, "port": PORT_NAME},
        "periodSeconds": 2,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    metadata = {
        "name": name,
        "namespace": _check_name(k8s.namespace, "namespace"),
        "labels": dict(template["metadata"]["labels"]),
        "annotations": dict(template["metadata"]["annotations"]),
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {"replicas": replicas, "selector": {"matchLabels": {RUN_LABEL: run.id}}, "template": template},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**metadata, "labels": dict(metadata["labels"]), "annotations": dict(metadata["annotations"])},
        "spec": {
            "type": service_type,
            "selector": {RUN_LABEL: run.id},
            "ports": [{"name": PORT_NAME, "port": port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }
    return deployment, service


def in_cluster_service(name: str, namespace: str, port: int) -> dict[str, Any]:
    """DigitalHub's ``status.service``: the Service's in-cluster URL, host and port."""
    host = f"{name}.{namespace}.svc.cluster.local"
    return {"url": f"http://{host}:{port}/", "host": host, "port": port}


def _api_error(exc: BaseException) -> str:
    """The Kubernetes API's own message for a refusal (its Status body), else the exception's."""
    import json

    body = getattr(exc, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message") or body)
        except (ValueError, AttributeError):
            return str(body)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class KubernetesServiceLauncher(Launcher):
    """A service's runner as a Deployment and a Service on the cluster of ``k8s``."""

    name = "kubernetes"

    def __init__(self, k8s: KubernetesSettings, run_as_root: bool = False, poll_interval: float = 1.0) -> None:
        self.k8s = k8s
        self.run_as_root = run_as_root
        self.poll_interval = poll_interval
        self.cluster = PodEvidence(k8s)
        self.fn: Executable | None = None

    def _apps(self) -> Any:
        return self.cluster._apps()

    def _core(self) -> Any:
        return self.cluster._core()

    def _manifests(self, run: Run, ctx: Context, runspec: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self.fn is not None
        url = ctx.run_url(run.id, RUNSPEC_FILE)
        return service_manifests(run, self.fn, url, ctx.settings, self.k8s, self.run_as_root, runspec)

    def prepare(self, fn: Executable, run: Run, ctx: Context) -> str:
        """Checks both objects (every task argument) and that their name is free, before anything is created."""
        self.fn = fn
        deployment, _ = self._manifests(run, ctx)
        self._owner_check(deployment, run)
        return f"image {deployment['spec']['template']['spec']['containers'][0]['image']}"

    def _owner_check(self, deployment: dict[str, Any], run: Run) -> bool:
        """Whether the Deployment exists already for ``run`` (a retry); raises when another run has the name."""
        name, namespace = deployment["metadata"]["name"], deployment["metadata"]["namespace"]
        try:
            existing = self._apps().read_namespaced_deployment(name, namespace)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise EntityError(f"the Deployment {namespace}/{name} could not be read: {_api_error(exc)}") from None
        owner = (existing.metadata.labels or {}).get(RUN_LABEL)
        if owner != run.id:
            raise EntityError(
                f"a Deployment {namespace}/{name} already exists (run {owner or 'unknown'}): stop that run, or give "
                "this one another service_name"
            )
        return True

    def inline_runspec(self, spec_json: bytes) -> bool:
        return len(spec_json) <= INLINE_RUNSPEC_MAX

    def start(self, spec: RunSpec, run: Run, ctx: Context) -> ServiceHandle:
        """Creates the Deployment and the Service, and waits for a ready replica."""
        if self.fn is None:
            raise RuntimeError("KubernetesServiceLauncher.start before prepare")
        deployment, service = self._manifests(run, ctx, spec.to_json().decode())
        name, namespace = deployment["metadata"]["name"], deployment["metadata"]["namespace"]
        handle = ServiceHandle(self.cluster, run, name, namespace, self.k8s)
        self._create(deployment, service, run)
        try:
            ready = self._wait_ready(handle, run, ctx)
        except BaseException:
            handle.kill()  # a service that is not ready is not left behind
            raise
        if ready:
            handle.status["service"] = in_cluster_service(name, namespace, service["spec"]["ports"][0]["port"])
        return handle

    def _create(self, deployment: dict[str, Any], service: dict[str, Any], run: Run) -> None:
        namespace = deployment["metadata"]["namespace"]
        name = deployment["metadata"]["name"]
        try:
            self._apps().create_namespaced_deployment(namespace, deployment)
        except Exception as exc:
            if getattr(exc, "status", None) != 409 or not self._owner_check(deployment, run):
                raise EntityError(f"the Deployment {namespace}/{name} was not created: {_api_error(exc)}") from None
        try:
            self._core().create_namespaced_service(namespace, service)
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                existing = self._core().read_namespaced_service(name, namespace)
                if (existing.metadata.labels or {}).get(RUN_LABEL) == run.id:
                    return  # a retry's: it is this run's
            self.cluster.remove_service(run)
            raise EntityError(f"the Service {namespace}/{name} was not created: {_api_error(exc)}") from None

    def _wait_ready(self, handle: ServiceHandle, run: Run, ctx: Context) -> bool:
        """True once the Deployment has a ready replica; False when the runner ended first and wrote
        its RunResult (an init function that raised: the result says why). Raises when its pods end
        without one, or after the connection's ``startup_timeout_seconds``."""
        result_url = ctx.run_url(run.id, RESULT_FILE)
        store = ctx.data_store(result_url)
        timeout = float(self.k8s.startup_timeout_seconds)
        deadline = time.monotonic() + timeout
        waiting = ""
        while True:
            found = self._apps().read_namespaced_deployment(handle.name, handle.namespace)
            if (found.status.ready_replicas if found.status else 0) or 0:
                return True
            for pod in self._core().list_namespaced_pod(handle.namespace, label_selector=handle.selector).items or []:
                ended = runner_ended(pod)
                if ended is not None:
                    if store.exists(result_url):
                        handle.kill()
                        handle.exit_code = 1
                        return False
                    where = f"{handle.namespace}/{pod.metadata.name}"
                    raise RunError(f"the service's pod {where} {ended} before it was ready")
                for container in (pod.status.container_statuses if pod.status else None) or []:
                    if container.state is not None and container.state.waiting is not None:
                        waiting = f" (its pod waits: {container.state.waiting.reason})"
            if time.monotonic() >= deadline:
                raise RunError(
                    f"the service's Deployment {handle.namespace}/{handle.name} had no ready replica within "
                    f"{timeout:g} s{waiting}: it was deleted"
                )
            time.sleep(self.poll_interval)

    def reattach(self, fn: Executable, run: Run, ctx: Context) -> ServiceHandle | None:
        """The service an earlier attempt started, while its Deployment exists."""
        self.fn = fn
        deployment, _ = self._manifests(run, ctx)
        if not self._owner_check(deployment, run):
            return None
        name, namespace = deployment["metadata"]["name"], deployment["metadata"]["namespace"]
        return ServiceHandle(self.cluster, run, name, namespace, self.k8s)


class ServiceHandle(Handle):
    """A service's Deployment. ``exit_code`` is set only when its runner ended before it was ready."""

    def __init__(self, cluster: PodEvidence, run: Run, name: str, namespace: str, k8s: KubernetesSettings) -> None:
        self.cluster = cluster
        self.run = run
        self.name = name
        self.namespace = namespace
        self.selector = f"{RUN_LABEL}={run.id}"
        self.exit_code: int | None = None
        self.status: dict[str, Any] = {
            "launcher": "kubernetes",
            "namespace": namespace,
            "deployment": name,
            "cluster": cluster_access(k8s),
        }

    def poll(self) -> int | None:
        return self.exit_code

    def wait(self, timeout: float | None = None) -> int:
        """The exit code of a runner that ended before it was ready; else waits while the service
        serves (its Deployment there, a pod running) and raises :class:`RunnerLost` once it is not."""
        if self.exit_code is not None:
            return self.exit_code
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self.cluster._apps().read_namespaced_deployment(self.name, self.namespace)
            except Exception as exc:
                if getattr(exc, "status", None) == 404:
                    raise RunnerLost(f"its Deployment {self.namespace}/{self.name} is gone") from None
            pods = self.cluster._core().list_namespaced_pod(self.namespace, label_selector=self.selector).items
            ended = [why for why in (runner_ended(p) for p in pods or []) if why is not None]
            if pods and len(ended) == len(pods):
                raise RunnerLost(f"the service's pods ended: {ended[0]}")
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"deployment/{self.name}", timeout or 0)
            time.sleep(1.0)

    def kill(self) -> None:
        """Deletes the Deployment and the Service (their pods go with the Deployment)."""
        self.cluster.remove_service(self.run)
