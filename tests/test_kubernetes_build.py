"""The build action on Kubernetes: the build context (its Dockerfile linted with hadolint), the Kaniko pod
(validated against the Kubernetes schemas, strict), and the whole path on the stand-in API server, where
the Kaniko image's entrypoint is tests/k8s_standin/kaniko_executor.py: it checks Kaniko's arguments,
reads the context from moto's S3, runs the Dockerfile's RUN lines, and writes a digest as Kaniko does.
Kaniko itself does not run here."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

import digitalhub_provider as dh
from digitalhub_provider.errors import EntityError
from digitalhub_provider.launchers.build_context import build_context, check_image_reference, destination
from tests.test_images import _hadolint
from tests.test_kubernetes_launcher import k8s, k8s_conn  # noqa: F401 - fixtures

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.timeout(300)]
BASE = "registry.local/dh-python:3.11"


@pytest.mark.parametrize(
    ("spec", "instructions", "run_as_root"),
    [
        ({"code": "def h():\n    return 1\n", "requirements": ["six==1.16.0", "pandas>=2"]},
         ["python -m pip install --no-cache-dir six==1.16.0", "echo built > /tmp/marker"], False),
        ({"code_src": "s3://bucket/src/main.py"}, [], False),
        ({"base64": "ZGVmIGgoKToKICAgIHJldHVybiAxCg=="}, ["echo as root"], True),
    ],
)  # fmt: skip
def test_the_generated_dockerfile_lints_clean(
    tmp_path: Path, spec: dict, instructions: list, run_as_root: bool
) -> None:
    context = build_context(spec, BASE, instructions, run_as_root=run_as_root)
    (tmp_path / "Dockerfile").write_text(context.dockerfile)
    res = subprocess.run([_hadolint(), "--failure-threshold", "info", str(tmp_path / "Dockerfile")],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    lines = context.dockerfile.splitlines()
    assert lines[1] == f"FROM {BASE}"
    assert lines[-1] == 'ENTRYPOINT ["python", "-m", "digitalhub_provider.runtimes"]'
    assert [line for line in lines if line.startswith("RUN ") and "requirements.txt" not in line] == [
        f"RUN {i}" for i in instructions
    ]
    users = [line for line in lines if line.startswith("USER ")]
    assert users[-1] == ("USER 0" if run_as_root else "USER 1000:1000")
    assert ("requirements.txt" in context.files) == bool(spec.get("requirements"))


def test_the_context_holds_the_dockerfile_requirements_and_source_and_is_reproducible() -> None:
    spec = {"code": "def h():\n    return 1\n", "requirements": ["six==1.16.0"]}
    first = build_context(spec, BASE, ["echo one"]).tar_gz()
    assert build_context(spec, BASE, ["echo one"]).tar_gz() == first  # same inputs, same bytes
    assert build_context(spec, BASE, ["echo two"]).tar_gz() != first
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        names = tar.getnames()
        source = tar.extractfile("source/main.py")
        assert source is not None and source.read() == spec["code"].encode()
        requirements = tar.extractfile("requirements.txt")
        assert requirements is not None and requirements.read() == b"six==1.16.0\n"
    assert sorted(names) == ["Dockerfile", "requirements.txt", "source/main.py"]


@pytest.mark.parametrize(
    ("reference", "valid"),
    [
        ("python:3.11-slim", True), ("registry.local:5000/team/fn:v1", True), ("localhost/fn", True),
        ("ghcr.io/org/fn@sha256:" + "a" * 64, True), ("Registry.Example/UPPER:tag", False), ("a b", False),
        ("fn:", False), ("/fn", False), ("fn@sha256:short", False),
    ],
)  # fmt: skip
def test_image_references_are_checked(reference: str, valid: bool) -> None:
    if valid:
        assert check_image_reference(reference) == reference
    else:
        with pytest.raises(EntityError, match="is not a valid image reference"):
            check_image_reference(reference)


def test_the_destination_is_the_registry_project_and_function_at_its_version() -> None:
    assert destination("registry.local:5000/dh/", "demo", "Six_Versions", "0af3") == (
        "registry.local:5000/dh/demo-six-versions:0af3"
    )
    with pytest.raises(EntityError, match="the connection names none: set its registry extra"):
        destination(None, "demo", "fn", "0af3")
    with pytest.raises(EntityError, match="does not make a valid image repository"):
        destination("bad registry", "demo", "fn", "0af3")


def _build_run(fn: Any, **args: Any) -> Any:
    from digitalhub_provider.sdk.context import get_context
    from digitalhub_provider.sdk.controller import RunController

    return RunController(get_context()).create(fn, action="build", local_execution=False, **args)


@pytest.mark.leaves_unfinished_runs  # a run made for its manifest only
def test_the_kaniko_pod_validates_strictly_and_holds_no_credential(k8s_conn: dict) -> None:  # noqa: F811
    import json

    import kubernetes_validate

    from digitalhub_provider.connection_extras import ConnectionExtras
    from digitalhub_provider.launchers.kaniko import BuildSettings, KanikoLauncher
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings
    from digitalhub_provider.sdk.context import get_context

    extras = ConnectionExtras.from_dict({**k8s_conn["extra"], "registry": "registry.local/dh",
                                         "registry_secret": "push-config"})  # fmt: skip
    fn = dh.new_function(project="demo", name="six-versions", kind="python", code="def h():\n    return 1\n",
                         handler="h", python_version="PYTHON3_11", requirements=["six"])  # fmt: skip
    run = _build_run(fn, instructions=["echo hi"], resources={"cpu": "1", "mem": "2Gi"})
    launcher = KanikoLauncher("build", KubernetesSettings.from_extras(extras), BuildSettings.from_extras(extras),
                              context=None)  # fmt: skip
    assert launcher.prepare(fn, run, get_context()) == (
        f"image registry.local/dh/demo-six-versions:{fn.id} from registry.local/dh-python:3.11"
    )
    manifest = launcher.manifest
    assert manifest is not None
    kubernetes_validate.validate(manifest, "1.35.0", strict=True)
    container = manifest["spec"]["containers"][0]
    assert "command" not in container and container["image"] == "gcr.io/kaniko-project/executor:v1.23.2"
    assert container["args"] == [
        "--dockerfile=Dockerfile",
        f"--context=s3://{k8s_conn['bucket']}/data/runs/{run.id}/build/context.tar.gz",
        f"--destination=registry.local/dh/demo-six-versions:{fn.id}",
        "--digest-file=/dev/termination-log",
        "--cleanup",
    ]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["securityContext"]["runAsUser"] == 0  # Kaniko builds as root; the image it makes does not
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert container["volumeMounts"] == [{"name": "docker-config", "mountPath": "/kaniko/.docker", "readOnly": True}]
    assert {"name": "docker-config", "secret": {"secretName": "push-config", "items": [
        {"key": ".dockerconfigjson", "path": "config.json"}]}} in manifest["spec"]["volumes"]  # fmt: skip
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "dh-credentials", "key": "DIGITALHUB_S3_SECRET_ACCESS_KEY"}  # fmt: skip
    text = json.dumps(manifest)
    assert k8s_conn["conn"]["password"] not in text and k8s_conn["conn"]["login"] not in text
    assert manifest["metadata"]["labels"]["digitalhub.run"] == run.id
