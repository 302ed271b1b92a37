"""A function's image build on Kubernetes: the build context and the Kaniko pod that reads it.

The control plane writes the context (a Dockerfile, the requirements, the function's source when it
is inline or a local file) as a tar.gz on the data store; Kaniko reads it from S3
(``--context s3://...``), pushes the image to the connection's registry and writes the image's digest
to its termination message (``--digest-file /dev/termination-log``), which the launcher reads from the
ended pod. Credentials stay references: S3's from the connection's credentials secret, the registry's
from a docker-config secret mounted where Kaniko looks for it. Nothing here talks to a cluster.
"""

from __future__ import annotations

import base64
import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitalhub_provider.errors import EntityError
from digitalhub_provider.runtimes.registry import BUILD_CONTEXT_FOLDER

DEFAULT_KANIKO_IMAGE = "gcr.io/kaniko-project/executor:v1.23.2"
CONTEXT_FILE = f"{BUILD_CONTEXT_FOLDER}context.tar.gz"  # in the run's folder on the data store
TERMINATION_LOG = "/dev/termination-log"
DOCKER_CONFIG_DIR = "/kaniko/.docker"
RUNNER_ENTRYPOINT = '["python", "-m", "digitalhub_provider.runtimes"]'
NON_ROOT_USER = "1000:1000"

# Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest], lowercase path.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# A first component is a registry only with a dot, a port, or as localhost (else it is a path: docker.io).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"(?:localhost(?::[0-9]+)?|{_LABEL}(?:\.{_LABEL})+(?::[0-9]+)?|{_LABEL}:[0-9]+)"
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?$"
)
_REPOSITORY = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*$")


def check_image_reference(reference: str, what: str = "image") -> str:
    """``reference`` when it is a valid image reference (``registry/path:tag``, ``@sha256:`` digest)."""
    if not isinstance(reference, str) or len(reference) > 255 or not _REFERENCE.match(reference):
        raise EntityError(
            f"{what} {reference!r} is not a valid image reference ([registry/]name[:tag][@sha256:digest], "
            "lowercase name)"
        )
    return reference


def destination(registry: str | None, project: str, function: str, version: str) -> str:
    """Where the build pushes: ``{registry}/{project}-{function}:{version id}``."""
    if not registry:
        raise EntityError(
            "the build action on Kubernetes pushes to a registry, and the connection names none: set its "
            "registry extra (e.g. registry.example.com/digitalhub) and registry_secret (a docker-config secret)"
        )
    repository = f"{registry.rstrip('/')}/{project}-{function}".lower().replace("_", "-")
    if not _REPOSITORY.match(repository):
        raise EntityError(f"registry {registry!r} does not make a valid image repository: {repository!r}")
    return check_image_reference(f"{repository}:{version}", "destination")


@dataclass
class BuildContext:
    dockerfile: str
    files: dict[str, bytes]  # path in the context -> content, the Dockerfile included

    def tar_gz(self) -> bytes:
        """The context as Kaniko reads it; the same files always make the same bytes."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.files):
                data = self.files[name]
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


def build_context(
    fn_spec: dict[str, Any],
    base_image: str,
    instructions: list[str] | None = None,
    run_as_root: bool = False,
) -> BuildContext:
    """The Dockerfile of a python (or mlrun) function's image, and the files it copies: ``FROM`` the
    base image, the requirements installed, the source copied in, each instruction a ``RUN`` line,
    the runner as entrypoint, user 1000 unless the build runs as root."""
    check_image_reference(base_image, "base image")
    files: dict[str, bytes] = {}
    lines = [
        "# The image of a DigitalHub function, made by its build run (Kaniko).",
        f"FROM {base_image}",
        *(["# the build asked to run as root", "# hadolint ignore=DL3002"] if run_as_root else []),
        "USER 0",
        "WORKDIR /opt/function",
    ]
    requirements = [str(r).strip() for r in fn_spec.get("requirements") or [] if str(r).strip()]
    if requirements:
        files["requirements.txt"] = ("\n".join(requirements) + "\n").encode()
        lines += ["COPY requirements.txt ./", "RUN python -m pip install --no-cache-dir -r requirements.txt"]
    source = _source(fn_spec)
    if source is not None:
        name, data = source
        files[f"source/{name}"] = data
        lines.append("COPY source/ ./source/")
    for line in (i for i in instructions or [] if i.strip()):
        # one RUN per instruction, as DigitalHub's build makes them: the user's steps stay apart
        lines += ["# hadolint ignore=DL3059", f"RUN {line}"]
    if not run_as_root:
        lines.append(f"USER {NON_ROOT_USER}")
    lines += ["WORKDIR /home/digitalhub", f"ENTRYPOINT {RUNNER_ENTRYPOINT}", ""]
    dockerfile = "\n".join(lines)
    files["Dockerfile"] = dockerfile.encode()
    return BuildContext(dockerfile, files)


def _source(fn_spec: dict[str, Any]) -> tuple[str, bytes] | None:
    """The function's source when the control plane holds it (inline, or a local file); a URL stays a
    URL, which the runner fetches when it runs."""
    nested = fn_spec.get("source")
    source: dict[str, Any] = nested if isinstance(nested, dict) else fn_spec
    if source.get("code"):
        return "main.py", str(source["code"]).encode()
    if source.get("base64"):
        return "main.py", base64.b64decode(source["base64"])
    src = source.get("code_src") or source.get("source")
    if isinstance(src, str) and "://" not in src and Path(src).is_file():
        return Path(src).name, Path(src).read_bytes()
    return None


def kaniko_container(
    kaniko_image: str,
    context_url: str,
    image: str,
    credentials_secret: str | None,
    s3_endpoint: str | None,
    s3_region: str | None,
    registry_secret: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Kaniko's container (and the pod's volumes): the context from S3, the push to ``image``, the digest to
    the termination message. Kaniko runs as root, as it must to build; the image it makes does not."""
    if not context_url.startswith("s3://"):
        raise EntityError(
            f"Kaniko reads the build context from S3, and the data store is {context_url.split('/runs/')[0]!r}: "
            "give the connection an s3:// data_url"
        )
    check_image_reference(kaniko_image, "kaniko_image")
    env: list[dict[str, Any]] = [{"name": "AWS_REGION", "value": s3_region or "us-east-1"}]
    if s3_endpoint:
        env += [{"name": "S3_ENDPOINT", "value": s3_endpoint}, {"name": "S3_FORCE_PATH_STYLE", "value": "true"}]
    if credentials_secret:
        for name, key in (("AWS_ACCESS_KEY_ID", "DIGITALHUB_S3_ACCESS_KEY_ID"),
                          ("AWS_SECRET_ACCESS_KEY", "DIGITALHUB_S3_SECRET_ACCESS_KEY")):  # fmt: skip
            env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": credentials_secret, "key": key}}})
    container: dict[str, Any] = {
        "name": "base",  # KubernetesPodOperator follows the container of that name
        "image": kaniko_image,
        "args": [
            "--dockerfile=Dockerfile",
            f"--context={context_url}",
            f"--destination={image}",
            f"--digest-file={TERMINATION_LOG}",
            "--cleanup",
        ],
        "env": env,
        "terminationMessagePath": TERMINATION_LOG,
        "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False},
    }
    volumes: list[dict[str, Any]] = []
    if registry_secret:
        container["volumeMounts"] = [{"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True}]
        volumes.append(
            {
                "name": "docker-config",
                "secret": {
                    "secretName": registry_secret,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
    return container, volumes


def digest_of(message: str | None) -> str:
    """The digest Kaniko wrote to the termination message."""
    text = (message or "").strip()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", text):
        raise EntityError(f"the build pod ended without an image digest in its termination message (got {text!r})")
    return text
