"""What the Kubernetes API says about the pods of runs: the reconciler's evidence for runs in pods.

A run's pod carries the label ``digitalhub.run=<run id>`` (:func:`.kubernetes.run_manifest`), so
its pods are found whatever random suffix KubernetesPodOperator gave their names. The API is
reached with the connection's Kubernetes settings, through the cncf-kubernetes provider's hook
(as KubernetesPodOperator reaches it).

A service's run (the serve action on Kubernetes, :mod:`.kubernetes_service`) is a Deployment and a
Service labelled the same way: it is lost when its Deployment is gone, or when none of its pods is
ready and one of them ended or crash-loops; stopping or losing it deletes both objects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings
    from digitalhub_provider.runtimes.contract import RunResult

log = logging.getLogger(__name__)

ENDED_PHASES = frozenset({"Succeeded", "Failed"})
RUN_LABEL = "digitalhub.run"
# Container waiting reasons that do not pass by themselves: the runner does not come back from them.
STUCK_REASONS = frozenset({"CrashLoopBackOff", "InvalidImageName", "ErrImageNeverPull"})
# The status fields of a run that name how its cluster is reached (never a credential).
CLUSTER_FIELDS = ("kubernetes_conn_id", "config_file", "in_cluster", "cluster_context")


def cluster_hook(k8s: KubernetesSettings) -> Any:
    """The cncf-kubernetes provider's hook on the cluster of ``k8s`` (as KubernetesPodOperator makes it)."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(
        conn_id=k8s.kubernetes_conn_id or "kubernetes_default",
        in_cluster=k8s.in_cluster,
        config_file=k8s.config_file,
        cluster_context=k8s.cluster_context,
    )


def cluster_access(k8s: KubernetesSettings) -> dict[str, Any]:
    """What a run's status records of how its cluster is reached (see :func:`cluster_of`)."""
    return {name: getattr(k8s, name) for name in CLUSTER_FIELDS if getattr(k8s, name) is not None}


def is_service(run: Run) -> bool:
    """Whether ``run`` is (or, not started yet, may be) a service on Kubernetes: a Deployment and a
    Service, not a pod. Its launcher, once recorded, says; before, ``local_execution=False`` (a run a
    client submitted keeps it while a local launcher runs it: then there is nothing to find)."""
    from digitalhub_provider.runtimes.registry import SERVE_ACTION

    if run.run_kind.action != SERVE_ACTION:
        return False
    launcher = run.status.get("launcher")
    return launcher == "kubernetes" if launcher else run.spec.get("local_execution") is False


def cluster_of(run: Run) -> PodEvidence | None:
    """The cluster a service's run recorded it runs on (``status.cluster``), for whoever stops it
    without a connection at hand (``run.stop()`` in the SDK); None for any other run."""
    if not is_service(run) or run.status.get("launcher") != "kubernetes":
        return None
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings

    recorded = run.status.get("cluster") or {}
    access = {name: recorded[name] for name in CLUSTER_FIELDS if recorded.get(name) is not None}
    return PodEvidence(KubernetesSettings(namespace=str(run.status.get("namespace") or "default"), **access))


class PodEvidence:
    """The pods of runs, as the cluster of ``k8s`` has them (see ``RunController.reconcile``)."""

    def __init__(self, k8s: KubernetesSettings) -> None:
        self.k8s = k8s
        self._client: Any = None
        self._hook: Any = None

    def _core(self) -> Any:
        if self._client is None:
            self._hook = cluster_hook(self.k8s)
            self._client = self._hook.core_v1_client
        return self._client

    def _apps(self) -> Any:
        self._core()
        return self._hook.apps_v1_client

    def _namespace(self, run: Run) -> str:
        return str(run.status.get("namespace") or self.k8s.namespace)

    def secret_exists(self, namespace: str, name: str) -> bool:
        """Whether the secret ``name`` is in ``namespace`` (asked before a pod that mounts it is made: a
        missing one would leave the pod waiting to start). A refusal other than 404 is not an answer."""
        try:
            self._core().read_namespaced_secret(name, namespace)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise
        return True

    def pods(self, run: Run) -> list[Any] | None:
        """The pods of ``run``; None when the cluster cannot be asked (then nothing is concluded)."""
        try:
            found = self._core().list_namespaced_pod(self._namespace(run), label_selector=f"{RUN_LABEL}={run.id}")
        except Exception as exc:  # unreachable cluster, no rights: the run is left as it is
            log.warning("the pods of run %s could not be listed: %s", run.id, exc)
            return None
        return list(found.items or [])

    def pod_logs(self, run: Run) -> str | None:
        """The logs of the pods of ``run`` so far (a running service's: its runner stores its log only when
        it stops), each under its pod's name; None when the cluster cannot be asked."""
        pods = self.pods(run)
        if pods is None:
            return None
        namespace = self._namespace(run)
        parts = []
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            try:
                text = self._core().read_namespaced_pod_log(pod.metadata.name, namespace)
            except Exception as exc:  # not started yet, or gone meanwhile
                text = f"(no log: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})\n"
            parts.append(f"==> pod {namespace}/{pod.metadata.name} <==\n{text}")
        return "".join(parts)

    def build_result(self, run: Run) -> RunResult | None:
        """What an image build's ended pod tells: the image at the digest Kaniko wrote to its termination
        message, or ERROR with the log tail Kubernetes kept there; None while it runs or when unknown."""
        from digitalhub_provider.launchers.kaniko import outcome_of

        pods = self.pods(run)
        ended = [p for p in pods or [] if p.status is not None and p.status.phase in ENDED_PHASES]
        if not ended:
            return None
        pod = ended[-1]
        args = pod.spec.containers[0].args or []
        destination = next((a.split("=", 1)[1] for a in args if a.startswith("--destination=")), "")
        message = None
        for status in pod.status.container_statuses or []:
            terminated = status.state.terminated if status.state else None
            if terminated is not None:
                message = str(terminated.message or "")
        return outcome_of(run.id, destination, pod.status.phase == "Succeeded", message, f"pod {pod.metadata.name}")

    def runner_gone(self, run: Run, follower_gone: bool) -> str | None:
        """Why the pod of ``run`` is known to have ended or gone, or None (pending or running, or
        unknown). No pod at all means gone only when ``follower_gone``: a follower that lives may
        not have created it yet, or may create it again."""
        if is_service(run):
            return self._service_gone(run)
        pods = self.pods(run)
        if pods is None:
            return None
        namespace = self._namespace(run)
        if not pods:
            if not follower_gone:
                return None
            return f"runner lost: its pod (label {RUN_LABEL}={run.id} in namespace {namespace}) is gone"
        if any((pod.status.phase if pod.status else None) not in ENDED_PHASES for pod in pods):
            return None
        pod = pods[-1]
        return f"runner lost: pod {namespace}/{pod.metadata.name} ended {pod.status.phase}{_why(pod)} without a result"

    def _service_gone(self, run: Run) -> str | None:
        """Why the service of ``run`` is known to be lost: its Deployment gone, or no pod of it ready
        and one ended or stuck (a restarted runner is a new process: the run's service was lost)."""
        namespace = self._namespace(run)
        name = run.status.get("deployment")
        if name:
            try:
                self._apps().read_namespaced_deployment(name, namespace)
            except Exception as exc:
                if getattr(exc, "status", None) == 404:
                    return f"runner lost: its Deployment {namespace}/{name} is gone"
                log.warning("the Deployment of run %s could not be read: %s", run.id, exc)
                return None
        pods = self.pods(run)
        if not pods or any(_ready(pod) for pod in pods):
            return None  # serving, or its pods are being made
        for pod in pods:
            why = runner_ended(pod)
            if why is not None:
                return f"runner lost: pod {namespace}/{pod.metadata.name} of its service {why}"
        return None

    def remove_service(self, run: Run) -> None:
        """Delete the Deployment and the Service of ``run`` (found by its label, so also before its
        status names them), then wait a little for their pods to go."""
        import time

        namespace = self._namespace(run)
        selector = f"{RUN_LABEL}={run.id}"
        try:
            deployments = self._apps().list_namespaced_deployment(namespace, label_selector=selector).items or []
            services = self._core().list_namespaced_service(namespace, label_selector=selector).items or []
        except Exception as exc:  # unreachable cluster, no rights: nothing more can be done from here
            log.warning("the Deployment and Service of run %s could not be listed: %s", run.id, exc)
            return
        for kind, items, delete in (
            ("Deployment", deployments, self._apps().delete_namespaced_deployment),
            ("Service", services, self._core().delete_namespaced_service),
        ):
            for item in items:
                try:
                    delete(item.metadata.name, namespace, propagation_policy="Background")
                except Exception as exc:  # gone meanwhile, or no rights
                    if getattr(exc, "status", None) != 404:
                        log.warning("%s %s of run %s was not deleted: %s", kind, item.metadata.name, run.id, exc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.pods(run):
            time.sleep(0.2)

    def remove_ended(self, run: Run) -> None:
        """Delete the ended pods of ``run`` (its follower, gone, would have: ``on_finish_action``);
        a service's Deployment and Service, which would otherwise serve on or restart."""
        if is_service(run):
            self.remove_service(run)
            return
        for pod in self.pods(run) or []:
            if pod.status is None or pod.status.phase not in ENDED_PHASES:
                continue
            try:
                self._core().delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
            except Exception as exc:  # already gone, or no rights: the outcome does not depend on it
                log.warning("pod %s of run %s was not deleted: %s", pod.metadata.name, run.id, exc)


def _why(pod: Any) -> str:
    """The container's exit code and reason, as `` (exit code 3: Error)``, or nothing when unknown."""
    for container in pod.status.container_statuses or []:
        ended = container.state.terminated if container.state else None
        if ended is not None:
            reason = f": {ended.reason}" if ended.reason else ""
            return f" (exit code {ended.exit_code}{reason})"
    return ""


def _ready(pod: Any) -> bool:
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def runner_ended(pod: Any) -> str | None:
    """How the runner of a service's pod ended (``ended Failed (exit code 137: Error)``, ``is in
    CrashLoopBackOff``), or None while it runs or starts."""
    if pod.status is None:
        return None
    if pod.status.phase in ENDED_PHASES:
        return f"ended {pod.status.phase}{_why(pod)}"
    for container in pod.status.container_statuses or []:
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason in STUCK_REASONS:
            return f"is in {waiting.reason}"
        if container.state is not None and container.state.terminated is not None:
            return f"ended{_why(pod)}"
    return None
