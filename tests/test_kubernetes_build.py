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


# -- the whole path on the stand-in ---------------------------------------------------------------------
CODE = "import six\n\ndef h():\n    return six.__name__\n"
STEPS = ["echo instructions ran", "python -c 'print(40 + 2)'"]


@pytest.fixture
def build_conn(k8s: Any, k8s_conn: dict, monkeypatch: pytest.MonkeyPatch) -> dict:  # noqa: F811
    """``dh_k8s`` with a registry and its push secret (a docker-config secret in the namespace)."""
    import json

    k8s.add_secret("dh", "push-config", {".dockerconfigjson": '{"auths": {}}'})
    extra = {**k8s_conn["extra"], "registry": "registry.local/dh", "registry_secret": "push-config"}
    monkeypatch.setenv("AIRFLOW_CONN_DH_K8S", json.dumps({**k8s_conn["conn"], "extra": extra}))
    return {**k8s_conn, "extra": extra}


def _kaniko_pods(server: Any) -> list[Any]:
    return [p for p in server.history if p.manifest["spec"]["containers"][0]["image"].startswith("gcr.io/kaniko")]


def _context_keys(endpoint: str, bucket: str) -> list[str]:
    from tests.test_kubernetes_launcher import _s3_keys

    return [k for k in _s3_keys(endpoint, bucket) if "/build/" in k]


def test_a_build_pushes_an_image_the_functions_next_version_and_its_next_job_run_on(
    k8s: Any,  # noqa: F811
    build_conn: dict,
    s3_endpoint: str,
) -> None:
    from tests.test_kubernetes_launcher import _context, _op

    ctx = _context("build")
    summary = _op(task_id="build", action="build", function="six-versions", code=CODE, handler="h",
                  requirements=["six"], instructions=STEPS).execute(ctx)  # fmt: skip
    assert summary["state"] == "COMPLETED", summary
    fn = dh.get_function("six-versions", project="demo")
    image, digest = summary["results"]["image"], summary["results"]["digest"]
    assert image == f"registry.local/dh/demo-six-versions:{fn.spec['image'].split(':')[1].split('@')[0]}@{digest}"
    assert fn.spec["image"] == image and summary["results"]["function"] == fn.key
    assert ctx["ti"].pushed["image"] == image  # XCom: the image reference with its digest
    (pod,) = _kaniko_pods(k8s)
    logs = pod.logs()
    assert "INFO[0001] RUN echo instructions ran\ninstructions ran\n" in logs  # each step, then its output
    assert "INFO[0001] RUN python -c 'print(40 + 2)'\n42\n" in logs
    assert "(the stand-in installs nothing)" in logs  # the requirements' pip line
    assert f"Pushing image to {image.split('@')[0]}" in logs
    assert (pod.namespace, pod.name) not in k8s.pods  # read, then deleted
    assert _context_keys(s3_endpoint, build_conn["bucket"]) == []  # the context is gone once read
    versions = [f for f in dh.list_functions("demo", all_versions=True) if f.name == "six-versions"]
    assert len(versions) == 2

    job = _op(task_id="job", function="six-versions", code=CODE, handler="h", requirements=["six"])
    assert job.execute(_context("job"))["results"] == {"output": "six"}
    (job_pod,) = [p for p in k8s.history if p not in _kaniko_pods(k8s)]
    assert job_pod.manifest["spec"]["containers"][0]["image"] == image  # the job runs on the built image


def test_a_failing_instruction_ends_the_build_error_with_its_line_and_output(
    k8s: Any,  # noqa: F811
    build_conn: dict,
    s3_endpoint: str,
) -> None:
    from airflow.sdk.exceptions import AirflowException

    from tests.test_kubernetes_launcher import _context, _op

    op = _op(task_id="build", action="build", function="broken", code=CODE, handler="h",
             instructions=["echo first", "echo it broke >&2; exit 4", "echo never"])  # fmt: skip
    with pytest.raises(AirflowException, match="ended ERROR: the image build failed"):
        op.execute(_context("build"))
    (run,) = dh.list_runs("demo")
    message = run.status.message or ""
    assert "RUN echo it broke >&2; exit 4" in message and "it broke" in message and "exit status 4" in message
    assert "RUN echo never" not in message
    versions = [f for f in dh.list_functions("demo", all_versions=True) if f.name == "broken"]
    assert len(versions) == 1 and versions[0].spec.get("image") is None  # no new version
    assert _context_keys(s3_endpoint, build_conn["bucket"]) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("no-registry", "the connection names none: set its registry extra"),
        ("no-secret", "the registry_secret 'missing-config' does not exist in namespace 'dh'"),
        ("base-image", "base_image 'Not An Image' is not a valid image reference"),
    ],
)
def test_a_build_that_cannot_run_is_refused_before_any_pod_or_upload(
    k8s: Any,  # noqa: F811
    build_conn: dict,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    words: str,
) -> None:
    import json

    from airflow.sdk.exceptions import AirflowException

    from tests.test_kubernetes_launcher import _context, _op

    extra = dict(build_conn["extra"])
    if change == "no-registry":
        extra.pop("registry")
    if change == "no-secret":
        extra["registry_secret"] = "missing-config"
    monkeypatch.setenv("AIRFLOW_CONN_DH_K8S", json.dumps({**build_conn["conn"], "extra": extra}))
    more = {"base_image": "Not An Image"} if change == "base-image" else {}
    op = _op(task_id="build", action="build", function="refused", code=CODE, handler="h", **more)
    with pytest.raises(AirflowException, match=words):
        op.execute(_context("build"))
    assert [r.status.state for r in dh.list_runs("demo")] == ["ERROR"]
    assert k8s.created_count == 0 and _context_keys(s3_endpoint, build_conn["bucket"]) == []


def test_a_build_stopped_mid_way_deletes_its_pod_and_context(
    k8s: Any,  # noqa: F811
    build_conn: dict,
    s3_endpoint: str,
) -> None:
    import threading

    from digitalhub_provider.sdk.context import get_context
    from digitalhub_provider.sdk.controller import RunController
    from tests.test_kubernetes_launcher import _capture, _context, _op

    op = _op(task_id="build", action="build", function="slow-build", code=CODE, handler="h",
             instructions=["echo building", "sleep 60"])  # fmt: skip
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(errors, op.execute, _context("build")))
    thread.start()
    pod = k8s.wait_for(lambda: _kaniko_pods(k8s) and "building" in _kaniko_pods(k8s)[0].logs() and
                       _kaniko_pods(k8s)[0], timeout=60)  # fmt: skip
    assert _context_keys(s3_endpoint, build_conn["bucket"]) != []
    (run,) = dh.list_runs("demo")
    RunController(get_context()).stop(run)  # from another process, as the SDK or the console would
    thread.join(60)
    assert not thread.is_alive() and errors and "ended STOPPED" in str(errors[0])
    assert k8s.wait_for(lambda: (pod.namespace, pod.name) not in k8s.pods, timeout=30)
    assert not pod.running_procs()
    assert dh.get_run(run.key).status.state == "STOPPED"
    assert _context_keys(s3_endpoint, build_conn["bucket"]) == []
    assert len([f for f in dh.list_functions("demo", all_versions=True) if f.name == "slow-build"]) == 1


def test_a_version_built_locally_is_refused_in_a_pod(k8s: Any, build_conn: dict) -> None:  # noqa: F811
    """A local build records a virtualenv of its host: a pod cannot run it, and says so before any pod."""
    from airflow.sdk.exceptions import AirflowException

    from tests.test_kubernetes_launcher import _context, _op

    summary = _op(task_id="build", action="build", function="local-built", code=CODE, handler="h",
                  local_execution=True).execute(_context("build"))  # fmt: skip
    assert summary["results"]["image"].startswith("venv://")
    with pytest.raises(AirflowException, match=r"was built locally \(venv://.*\): its environment is a virtualenv"):
        _op(task_id="job", function="local-built", code=CODE, handler="h").execute(_context("job"))
    assert k8s.created_count == 0


def test_the_example_dag_builds_once_on_kubernetes_and_its_job_runs_on_the_image(
    k8s: Any,  # noqa: F811
    build_conn: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """build_then_run with the default connection on Kubernetes: a Kaniko pod, then the job's pod on the
    image it pushed."""
    import json

    from tests.airflow_helpers import load_dag, task_states, xcoms

    monkeypatch.setenv(
        "AIRFLOW_CONN_DIGITALHUB_DEFAULT", json.dumps({**build_conn["conn"], "extra": build_conn["extra"]})
    )
    dr = load_dag("build_then_run.py").test()
    assert task_states(dr) == {"build": "success", "job": "success"}
    x = xcoms("build_then_run", dr.run_id)
    fn = dh.get_function("six-versions", project="demo")
    assert x[("build", "image")] == fn.spec["image"] and "@sha256:" in fn.spec["image"]
    (job_pod,) = [p for p in k8s.history if p not in _kaniko_pods(k8s)]
    assert job_pod.manifest["spec"]["containers"][0]["image"] == fn.spec["image"]
    assert x[("job", "six_version")]  # the stand-in installs nothing: the host's six answers
    assert len(_kaniko_pods(k8s)) == 1


def test_an_mlrun_functions_build_is_the_image_of_its_next_jobs_pod(k8s: Any, build_conn: dict) -> None:  # noqa: F811
    """MlrunJobOperator(action="build") on Kubernetes: the image pinned by its digest is the pod image of
    the function's next job (an mlrun function's own image, a tag, stays MLRun's and is not the pod's)."""
    from digitalhub_provider.hooks.digitalhub import DigitalHubHook
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings, image_for
    from digitalhub_provider.operators import MlrunJobOperator
    from tests.test_kubernetes_launcher import _context

    code = "def train(context):\n    context.log_result('ok', 1)\n"
    op = MlrunJobOperator(task_id="build", project="demo", function="trainer", source={"code": code},
                          handler="train", action="build", digitalhub_conn_id="dh_k8s")  # fmt: skip
    summary = op.execute(_context("build"))
    assert summary["state"] == "COMPLETED", summary
    k8s_settings = KubernetesSettings.from_extras(DigitalHubHook("dh_k8s").connection_extras)
    built = dh.get_function("trainer", project="demo")
    assert image_for(built, k8s_settings) == summary["results"]["image"] == built.spec["image"]
    tagged = dh.new_function(project="demo", name="tagged", kind="mlrun", source={"code": code}, handler="train",
                             image="mlrun/mlrun", tag="1.12.1")  # fmt: skip
    assert image_for(tagged, k8s_settings) == "registry.local/dh-python:3.11"  # the runtime image, not MLRun's


BUILD_WORKER = """
from tests.test_kubernetes_build import CODE
from tests.test_kubernetes_launcher import _context, _op
_op(task_id="build", action="build", function="orphan-build", code=CODE, handler="h",
    instructions=["echo building", "sleep 3"]).execute(_context("build"))
"""


def test_the_reconciler_finishes_a_build_whose_worker_died_from_its_pod(
    k8s: Any,  # noqa: F811
    build_conn: dict,
    s3_endpoint: str,
) -> None:
    """The worker following a Kaniko pod is SIGKILLed; the pod goes on and succeeds. The reconciler (with
    the connection) reads the digest from the ended pod as the worker would have: the run COMPLETES, the
    function gets its built version, the pod and the context are removed."""
    import os
    import signal
    import sys

    from digitalhub_provider.cli import reconcile

    repo = Path(__file__).resolve().parent.parent
    worker = subprocess.Popen([sys.executable, "-c", BUILD_WORKER], cwd=repo, env=dict(os.environ),
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        pod = k8s.wait_for(lambda: _kaniko_pods(k8s) and "building" in _kaniko_pods(k8s)[0].logs() and
                           _kaniko_pods(k8s)[0], timeout=90)  # fmt: skip
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker dies; the pod goes on
        worker.wait()
    k8s.wait_for(lambda: pod.phase == "Succeeded", timeout=60)
    assert reconcile(conn_id="dh_k8s") == {"unfinished": 1, "COMPLETED": 1}
    (run,) = dh.list_runs("demo")
    fn = dh.get_function("orphan-build", project="demo")
    assert run.status.get("results")["image"] == fn.spec["image"] and "@sha256:" in fn.spec["image"]
    assert k8s.wait_for(lambda: (pod.namespace, pod.name) not in k8s.pods, timeout=30)
    assert _context_keys(s3_endpoint, build_conn["bucket"]) == []
