"""What the Kubernetes API says about the pods of runs: the reconciler's evidence for runs in pods.

A run's pod carries the label ``digitalhub.run=<run id>`` (:func:`.kubernetes.run_manifest`), so
its pods are found whatever random suffix KubernetesPodOperator gave their names. The API is
reached with the connection's Kubernetes settings, through the cncf-kubernetes provider's hook
(as KubernetesPodOperator reaches it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings

log = logging.getLogger(__name__)

ENDED_PHASES = frozenset({"Succeeded", "Failed"})
RUN_LABEL = "digitalhub.run"


class PodEvidence:
    """The pods of runs, as the cluster of ``k8s`` has them (see ``RunController.reconcile``)."""

    def __init__(self, k8s: KubernetesSettings) -> None:
        self.k8s = k8s
        self._client: Any = None

    def _core(self) -> Any:
        if self._client is None:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            hook = KubernetesHook(
                conn_id=self.k8s.kubernetes_conn_id or "kubernetes_default",
                in_cluster=self.k8s.in_cluster,
                config_file=self.k8s.config_file,
                cluster_context=self.k8s.cluster_context,
            )
            self._client = hook.core_v1_client
        return self._client

    def _namespace(self, run: Run) -> str:
        return str(run.status.get("namespace") or self.k8s.namespace)

    def pods(self, run: Run) -> list[Any] | None:
        """The pods of ``run``; None when the cluster cannot be asked (then nothing is concluded)."""
        try:
            found = self._core().list_namespaced_pod(self._namespace(run), label_selector=f"{RUN_LABEL}={run.id}")
        except Exception as exc:  # unreachable cluster, no rights: the run is left as it is
            log.warning("the pods of run %s could not be listed: %s", run.id, exc)
            return None
        return list(found.items or [])

    def runner_gone(self, run: Run, follower_gone: bool) -> str | None:
        """Why the pod of ``run`` is known to have ended or gone, or None (pending or running, or
        unknown). No pod at all means gone only when ``follower_gone``: a follower that lives may
        not have created it yet, or may create it again."""
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

    def remove_ended(self, run: Run) -> None:
        """Delete the ended pods of ``run`` (its follower, gone, would have: ``on_finish_action``)."""
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
