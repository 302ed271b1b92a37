"""The build action on Kubernetes: a Kaniko pod through KubernetesPodOperator.

``prepare`` checks everything a build needs (registry, base image, the push secret), then writes the
build context to the data store (:mod:`.build_context`); the pod runs Kaniko, which reads it from S3,
pushes ``{registry}/{project}-{function}:{version}`` and writes the digest to its termination message.
Kaniko writes no RunResult, so the handle writes it for the pod from what the ended pod says: the
image and its digest, or the log tail Kubernetes puts in the termination message of a failed
container (``FallbackToLogsOnError``). The run controller then records the image on the function's
next version (``spec.image``), in the same write as the run's COMPLETED.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from digitalhub_provider.errors import EntityError
from digitalhub_provider.launchers.base import RunnerLost
from digitalhub_provider.launchers.build_context import (
    CONTEXT_FILE,
    DEFAULT_KANIKO_IMAGE,
    build_context,
    check_image_reference,
    destination,
    digest_of,
    kaniko_container,
)
from digitalhub_provider.launchers.k8s_spec import pod_manifest
from digitalhub_provider.launchers.kubernetes import (
    KubernetesLauncher,
    KubernetesSettings,
    PodHandle,
    label_value,
    pod_operator,
    run_annotations,
    run_labels,
    runtime_image,
)
from digitalhub_provider.runtimes.contract import RESULT_FILE, RunResult
from digitalhub_provider.states import State

if TYPE_CHECKING:
    from digitalhub_provider.connection_extras import ConnectionExtras
    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.runtimes.contract import RunSpec
    from digitalhub_provider.stores.context import Context


@dataclass
class BuildSettings:
    """The image-build part of a ``digitalhub`` connection's extras."""

    registry: str | None = None
    registry_secret: str | None = None
    kaniko_image: str = DEFAULT_KANIKO_IMAGE

    @classmethod
    def from_extras(cls, extras: ConnectionExtras) -> BuildSettings:
        return cls(extras.registry, extras.registry_secret, extras.kaniko_image or DEFAULT_KANIKO_IMAGE)


def base_image_of(fn: Executable, k8s: KubernetesSettings) -> str:
    """What the image is built ``FROM``: the function's ``base_image``, else the runtime image for its
    Python (the connection's ``default_image`` pattern); never the image an earlier build made."""
    if fn.spec.get("base_image"):
        return check_image_reference(str(fn.spec["base_image"]), "base_image")
    image = runtime_image(fn, k8s)
    if not image:
        raise EntityError(
            "no base image for the build: set the function's base_image, or default_image in the connection"
        )
    return check_image_reference(image, "the runtime image (default_image)")


class KanikoLauncher(KubernetesLauncher):
    """The build action's pod. ``secret_exists`` answers whether the push secret is in the namespace
    (asked before anything is written: a missing secret would leave the pod waiting to mount it)."""

    name = "kubernetes"
    runs_build = True

    def __init__(self, task_id: str, k8s: KubernetesSettings, build: BuildSettings, context: Any,
                 run_as_root: bool = False, secret_exists: Any = None) -> None:  # fmt: skip
        super().__init__(task_id, k8s, context, deferrable=False, run_as_root=run_as_root)
        self.build = build
        self.secret_exists = secret_exists
        self.image: str | None = None  # what the build pushes, without its digest until it ends

    def prepare(self, fn: Executable, run: Run, ctx: Context) -> str:
        """Checks the build (registry, images, push secret, the pod), then writes its context."""
        base = base_image_of(fn, self.k8s)
        self.manifest = self._manifest(fn, run, ctx)
        context_url = ctx.run_url(run.id, CONTEXT_FILE)
        source = build_context(fn.spec, base, list(run.spec.get("instructions") or []), self.run_as_root)
        ctx.data_store(context_url).write_bytes(context_url, source.tar_gz())
        return f"image {self.image} from {base}"

    def _manifest(self, fn: Executable, run: Run, ctx: Context) -> dict[str, Any]:
        self.image = destination(self.build.registry, run.project, fn.name, fn.id)
        container, pod_volumes = kaniko_container(
            self.build.kaniko_image, ctx.run_url(run.id, CONTEXT_FILE), self.image, self.k8s.credentials_secret,
            ctx.settings.s3_endpoint_url, ctx.settings.s3_region, self.build.registry_secret,
        )  # fmt: skip
        if (
            self.build.registry_secret
            and self.secret_exists is not None
            and not self.secret_exists(self.k8s.namespace, self.build.registry_secret)
        ):
            raise EntityError(
                f"the registry_secret {self.build.registry_secret!r} does not exist in namespace "
                f"{self.k8s.namespace!r}: create a kubernetes.io/dockerconfigjson secret of that name"
            )
        task = {k: v for k, v in run.spec.items() if k in ("resources", "node_selector", "affinity", "tolerations")}
        manifest = pod_manifest(
            name=f"dh-build-{label_value(fn.name)[:24].lower().strip('-.') or 'fn'}-{run.id[:12]}",
            namespace=self.k8s.namespace, image=container["image"], command=[], args=container["args"],
            env=container["env"], task=task,
            labels=run_labels(run, fn), annotations=run_annotations(run, fn),
            service_account=self.k8s.service_account, run_as_root=True,
        )  # fmt: skip
        built = manifest["spec"]["containers"][0]
        built.pop("command", None)  # Kaniko's own entrypoint
        for key in ("terminationMessagePath", "securityContext", "volumeMounts"):
            if key in container:
                built[key] = container[key]
        built["terminationMessagePolicy"] = "FallbackToLogsOnError"
        manifest["spec"]["volumes"] = [*manifest["spec"].get("volumes", []), *pod_volumes]
        return manifest

    def _handle(self, run: Run, ctx: Context) -> KanikoHandle:
        if self.manifest is None or self.image is None:
            raise RuntimeError("KanikoLauncher: no pod prepared")
        kpo = pod_operator(self.task_id, self.manifest, self.k8s)
        kpo.on_finish_action = "keep_pod"  # its termination message is read, then it is deleted
        kpo.termination_message_policy = "FallbackToLogsOnError"  # KubernetesPodOperator sets the container's
        self.pod_operator = kpo
        return KanikoHandle(kpo, self.context, self.image, run, ctx)

    def start(self, spec: RunSpec, run: Run, ctx: Context) -> KanikoHandle:
        return self._handle(run, ctx)

    def reattach(self, fn: Executable, run: Run, ctx: Context) -> KanikoHandle:
        """KubernetesPodOperator finds the build pod of the earlier attempt by its labels; its context is
        still on the data store."""
        self.manifest = self._manifest(fn, run, ctx)
        return self._handle(run, ctx)


class KanikoHandle(PodHandle):
    def __init__(self, kpo: Any, context: Any, image: str, run: Run, ctx: Context) -> None:
        super().__init__(kpo, context, deferrable=False)
        self.image = image
        self.run = run
        self.ctx = ctx

    def wait(self, timeout: float | None = None) -> int:
        """Kaniko's pod to its end, then its outcome as the run's RunResult (written for the pod)."""
        failure: RunnerLost | None = None
        try:
            super().wait(timeout)
        except RunnerLost as exc:
            failure = exc
        message = self._termination_message()
        cause = str(failure) if failure is not None else ""
        result = outcome_of(self.run.id, self.image, failure is None, message, cause)
        url = self.ctx.run_url(self.run.id, RESULT_FILE)
        self.ctx.data_store(url).write_bytes(url, result.to_json())
        self.exit_code = 0 if failure is None else 1
        return self.exit_code

    def _termination_message(self) -> str | None:
        """What the ended pod's container wrote to its termination message; the pod is deleted after."""
        pod = getattr(self.kpo, "pod", None)
        if pod is None:
            return None
        try:
            remote = self.kpo.pod_manager.read_pod(pod)
        except Exception:  # gone already (deleted by a stop)
            return None
        finally:
            try:
                self.kpo.pod_manager.delete_pod(pod)
            except Exception:  # already gone: nothing to delete
                pass
        for status in remote.status.container_statuses or []:
            terminated = status.state.terminated if status.state else None
            if terminated is not None:
                return str(terminated.message or "")
        return None


def outcome_of(run_id: str, image: str, succeeded: bool, message: str | None, cause: str = "") -> RunResult:
    """A build pod's outcome as a RunResult: ``image`` at the digest Kaniko wrote to the termination
    message, or ERROR with what the message holds (the log tail of a failed container)."""
    if succeeded:
        try:
            digest = digest_of(message)
        except EntityError as exc:
            return RunResult(run_id, State.ERROR.value, str(exc))
        return RunResult(run_id, State.COMPLETED.value, results={"image": f"{image}@{digest}", "digest": digest})
    tail = (message or "").strip()
    return RunResult(run_id, State.ERROR.value, f"the image build failed: {tail or cause or 'its pod failed'}")
