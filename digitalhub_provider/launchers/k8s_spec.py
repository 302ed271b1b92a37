"""DigitalHub task arguments as a Kubernetes pod manifest (plain dictionaries).

Everything a user can get wrong is checked here, before any pod exists:
resource quantities, volume, secret and env names, unknown profiles, a missing
image. Secret *values* never appear: secrets are referenced by name
(``envFrom.secretRef``, ``secretKeyRef``). Pods run as non-root unless asked.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from digitalhub_provider.errors import EntityError

QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?\d+))?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
RESOURCE_NAMES = {"cpu": "cpu", "mem": "memory", "memory": "memory", "gpu": "nvidia.com/gpu"}
VOLUME_TYPES = ("persistent_volume_claim", "config_map", "secret", "empty_dir")
BASE_CONTAINER = "base"
NON_ROOT_UID = 1000

POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": NON_ROOT_UID,
    "runAsGroup": NON_ROOT_UID,
    "fsGroup": NON_ROOT_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def camelize(value: Any) -> Any:
    """DigitalHub writes Kubernetes objects in snake_case or camelCase: make them camelCase."""
    if isinstance(value, dict):
        return {_camel(k) if isinstance(k, str) else k: camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


def quantity(value: Any, what: str) -> str:
    text = str(value).strip()
    if not QUANTITY.match(text):
        raise EntityError(f"invalid resource quantity {value!r} for {what}: use e.g. 500m, 2, 1Gi")
    return text


def resources(spec: dict[str, Any] | None, gpu_resource: str = "nvidia.com/gpu") -> dict[str, dict[str, str]]:
    """``{"cpu": "1", "mem": {"requests": "1Gi", "limits": "2Gi"}, "gpu": {"limits": "1"}}`` as requests/limits.

    A plain value is both request and limit; a GPU is a limit only (Kubernetes requires them equal).
    """
    out: dict[str, dict[str, str]] = {}
    for key, value in (spec or {}).items():
        if key not in RESOURCE_NAMES:
            raise EntityError(f"unknown resource {key!r}: use cpu, mem or gpu")
        name = gpu_resource if key == "gpu" else RESOURCE_NAMES[key]
        if isinstance(value, dict):
            unknown = set(value) - {"requests", "limits"}
            if unknown:
                raise EntityError(f"resource {key!r}: unknown field(s) {sorted(unknown)}: use requests and limits")
            pairs = {kind: value[kind] for kind in ("requests", "limits") if value.get(kind) is not None}
        else:
            pairs = {"limits": value} if key == "gpu" else {"requests": value, "limits": value}
        for kind, amount in pairs.items():
            out.setdefault(kind, {})[name] = quantity(amount, f"{key} {kind}")
    return out


def node_selector(value: list[dict[str, Any]] | dict[str, str] | None) -> dict[str, str] | None:
    if not value:
        return None
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    try:
        return {str(item["key"]): str(item["value"]) for item in value}
    except (KeyError, TypeError):
        raise EntityError("node_selector: give a dictionary or a list of {key, value}") from None


def _check_name(name: Any, what: str, pattern: re.Pattern[str] = DNS_LABEL) -> str:
    if not isinstance(name, str) or not pattern.match(name):
        raise EntityError(f"invalid {what} name {name!r}: use lower-case letters, digits and '-'")
    return name


def volumes(items: list[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """DigitalHub volumes (``volume_type``, ``name``, ``mount_path``, ``spec``) as pod volumes and mounts."""
    pod_volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for item in items or []:
        vtype = item.get("volume_type")
        name = _check_name(item.get("name"), "volume")
        mount = item.get("mount_path")
        spec = item.get("spec") or {}
        if vtype not in VOLUME_TYPES:
            raise EntityError(f"volume {name!r}: volume_type must be one of {', '.join(VOLUME_TYPES)}, got {vtype!r}")
        if not isinstance(mount, str) or not mount.startswith("/"):
            raise EntityError(f"volume {name!r}: mount_path must be an absolute path, got {mount!r}")
        if vtype == "persistent_volume_claim":
            source = {
                "persistentVolumeClaim": {
                    "claimName": _check_name(spec.get("claim_name", name), "claim", DNS_SUBDOMAIN)
                }
            }
        elif vtype == "config_map":
            source = {"configMap": {"name": _check_name(spec.get("name", name), "config map", DNS_SUBDOMAIN)}}
        elif vtype == "secret":
            source = {"secret": {"secretName": _check_name(spec.get("secret_name", name), "secret", DNS_SUBDOMAIN)}}
        else:
            empty: dict[str, Any] = {}
            if spec.get("size_limit") or spec.get("size"):
                empty["sizeLimit"] = quantity(spec.get("size_limit") or spec.get("size"), f"volume {name} size")
            if spec.get("medium"):
                empty["medium"] = spec["medium"]
            source = {"emptyDir": empty}
        pod_volumes.append({"name": name, **source})
        mounts.append({"name": name, "mountPath": mount, "readOnly": vtype in ("config_map", "secret")})
    return pod_volumes, mounts


def env_list(envs: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for item in envs or []:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise EntityError(f"invalid environment variable {item!r}: give {{'name': ..., 'value': ...}}")
        out.append({"name": name, "value": str(item.get("value", ""))})
    return out


def secret_refs(names: list[str] | None) -> list[dict[str, Any]]:
    return [{"secretRef": {"name": _check_name(n, "secret", DNS_SUBDOMAIN)}} for n in names or []]


def apply_profile(task: dict[str, Any], profiles: dict[str, Any], profile: str | None) -> dict[str, Any]:
    """The task arguments over the named profile's (a pod template kept in the connection)."""
    if not profile:
        return task
    if profile not in profiles:
        raise EntityError(
            f"unknown profile {profile!r}: the connection defines {', '.join(sorted(profiles)) or 'none'}"
        )
    merged = copy.deepcopy(profiles[profile])
    for key, value in task.items():
        if value is not None:
            merged[key] = value
    return merged


def check_task_arguments(task: dict[str, Any]) -> None:
    """The task arguments' own rules (quantities, names, volumes, envs), whatever launcher runs the
    task: a run that would fail on Kubernetes fails the same way locally, before it starts. A
    profile is checked where the connection's profiles are known (:func:`apply_profile`)."""
    if task.get("service_name") is not None:
        _check_name(task["service_name"], "service")
    resources(task.get("resources"))
    node_selector(task.get("node_selector"))
    volumes(task.get("volumes"))
    env_list(task.get("envs"))
    secret_refs(task.get("secrets"))


def pod_template(
    *,
    image: str | None,
    command: list[str],
    args: list[str],
    env: list[dict[str, Any]],
    task: dict[str, Any],
    labels: dict[str, str],
    annotations: dict[str, str],
    service_account: str | None = None,
    profiles: dict[str, Any] | None = None,
    run_as_root: bool = False,
    gpu_resource: str = "nvidia.com/gpu",
    restart_policy: str = "Never",
) -> dict[str, Any]:
    """A pod's ``metadata`` (labels, annotations) and ``spec``, validated: what a job's pod and a
    service's Deployment template share. ``task`` holds the DigitalHub task arguments."""
    if not image:
        raise EntityError(
            "no image for the pod: set the function's image or base_image, or default_image in the connection"
        )
    task = apply_profile(task, profiles or {}, task.get("profile"))
    pod_volumes, mounts = volumes(task.get("volumes"))
    container: dict[str, Any] = {
        "name": BASE_CONTAINER,
        "image": image,
        "command": command,
        "args": args,
        "env": [*env, *env_list(task.get("envs"))],
        "envFrom": secret_refs(task.get("secrets")),
        "resources": resources(task.get("resources"), gpu_resource),
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {"restartPolicy": restart_policy, "containers": [container], "volumes": pod_volumes}
    if not run_as_root:
        spec["securityContext"] = dict(POD_SECURITY)
        container["securityContext"] = copy.deepcopy(CONTAINER_SECURITY)
    if service_account or task.get("service_account"):
        spec["serviceAccountName"] = _check_name(
            service_account or task.get("service_account"), "service account", DNS_SUBDOMAIN
        )
    selector = node_selector(task.get("node_selector"))
    if selector:
        spec["nodeSelector"] = selector
    if task.get("affinity"):
        spec["affinity"] = camelize(task["affinity"])
    if task.get("tolerations"):
        spec["tolerations"] = camelize(task["tolerations"])
    metadata = {
        "labels": {**labels, **(task.get("labels") or {})},
        "annotations": {**annotations, **(task.get("annotations") or {})},
    }
    return {"metadata": metadata, "spec": spec}


def pod_manifest(*, name: str, namespace: str, **template: Any) -> dict[str, Any]:
    """The whole pod, validated (``template``: :func:`pod_template`'s arguments)."""
    pod = pod_template(**template)
    metadata = {"name": name, "namespace": _check_name(namespace, "namespace"), **pod["metadata"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod["spec"]}
