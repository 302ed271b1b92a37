"""The mlrun runtime with an MLRun API server: real MLRun local runs (the mlrun environment), registered
afterwards with a stand-in MLRun API server (tests/mlrun_api_standin.py) through MLRun's own client.

The mlrun environment is built once (a few minutes) and cached in ``DIGITALHUB_TEST_ENVS_DIR``.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import digitalhub_provider as dh
from tests.servers import free_port, process_group
from tests.test_mlrun_runtime import BAD, TRAIN, _assert_error, _employees

REPO = Path(__file__).resolve().parent.parent
# no "-": MLRun sends a token of more than 20 characters with a "-" as an Iguazio session cookie instead
TOKEN = "mlrunT0kenDoNotPrint4f9c"


class Standin:
    """The stand-in MLRun API server, seen from the tests."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="GET" if data is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    def state(self) -> dict[str, Any]:
        return self._call("/_state")

    def reset(self) -> None:
        self._call("/_reset", {})

    def fail_artifacts(self, after: int, status: int = 500) -> None:
        self._call("/_fail", {"artifacts_after": after, "status": status})


@pytest.fixture(scope="module")
def standin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    """The stand-in in its own process group on a free port, stopped when the module's tests are done."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = tmp_path_factory.mktemp("mlrun-api") / "standin.log"
    with process_group([sys.executable, "-m", "tests.mlrun_api_standin", str(port)], port, log, env=env):
        yield Standin(f"http://127.0.0.1:{port}")


@pytest.fixture
def standin(standin_server: Standin, monkeypatch: pytest.MonkeyPatch, dh_home: Path) -> Standin:
    """A fresh stand-in, named by DIGITALHUB_MLRUN_API (the runner gets it through Settings.to_env())."""
    from digitalhub_provider.sdk.context import reset_context

    standin_server.reset()
    monkeypatch.setenv("DIGITALHUB_MLRUN_API", standin_server.url + "/")  # a trailing slash is tolerated
    monkeypatch.delenv("DIGITALHUB_MLRUN_TOKEN", raising=False)
    reset_context()
    return standin_server


def _files_with(root: Path, secret: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


# -- registered -----------------------------------------------------------------------------------
def test_a_completed_run_and_its_artifacts_are_registered(
    standin: Standin, monkeypatch: pytest.MonkeyPatch, dh_home: Path
) -> None:
    from digitalhub_provider.sdk.context import reset_context

    monkeypatch.setenv("DIGITALHUB_MLRUN_TOKEN", TOKEN)
    reset_context()
    employees = _employees()
    fn = dh.new_function(project="demo", name="train", kind="mlrun", source={"code": TRAIN}, handler="train")
    run = fn.run(
        action="job", inputs={"data": employees.key}, parameters={"factor": 2, "label": "Payroll"},
        outputs={"model": "salary-model", "report": "salary-report"}, values=["total"],
    )  # fmt: skip
    assert run.state == "COMPLETED", run.status.message
    assert run.result("mlrun_api") == standin.url  # where, without a trailing slash or credentials
    assert set(run.results()) == {"total", "mlrun_run", "mlrun_api"}
    uid = run.result("mlrun_run")["metadata"]["uid"]

    state = standin.state()
    assert list(state["projects"]) == ["demo"]
    assert state["calls"][:3] == ["GET /api/v1/client-spec", "GET /api/v1/projects/demo", "POST /api/v1/projects"]
    assert set(state["auth"]) == {f"Authorization: Bearer {TOKEN}"}  # the token reached the server, as a header

    # the run record, as MLRun made it
    assert list(state["runs"]) == [f"demo/{uid}/0"]
    record = state["runs"][f"demo/{uid}/0"]
    assert record["metadata"]["uid"] == uid and record["metadata"]["project"] == "demo"
    assert record["status"]["state"] == "completed" and record["status"]["results"]["total"] == run.result("total")
    assert record["spec"]["parameters"] == {"factor": 2, "label": "Payroll"}

    # the artifacts: MLRun's keys, tree = the run's uid, data where the platform stored it
    scaled, model, report = run.output("scaled"), run.output("salary-model"), run.output("salary-report")
    artifacts = {key.split("/")[1]: item["artifact"] for key, item in state["artifacts"].items()}
    assert set(state["artifacts"]) == {f"demo/train-train_{k}/{uid}/0" for k in ("scaled", "model", "report")}
    assert {a["metadata"]["tree"] for a in artifacts.values()} == {uid}
    ds = artifacts["train-train_scaled"]
    assert ds["kind"] == "dataset" and ds["spec"]["target_path"] == scaled.spec["path"]
    assert ds["spec"]["format"] == "parquet" and scaled.spec["path"].endswith("/data.parquet")
    mdl = artifacts["train-train_model"]
    assert mdl["kind"] == "model" and mdl["spec"]["model_file"] == "model.pkl"
    assert mdl["spec"]["target_path"] + mdl["spec"]["model_file"] == model.spec["path"]
    assert Path(mdl["spec"]["target_path"], "model_spec.yaml").is_file()  # MLRun's model folder, on the platform
    rep = artifacts["train-train_report"]
    assert rep["kind"] == "artifact" and rep["spec"]["target_path"] == report.spec["path"]
    assert Path(rep["spec"]["target_path"]).read_text() == "Payroll: 20 rows"
    # the run record lists the same places
    listed = {a["metadata"]["key"]: a["spec"]["target_path"] for a in record["status"]["artifacts"]}
    assert listed == {"scaled": scaled.spec["path"], "model": mdl["spec"]["target_path"], "report": report.spec["path"]}

    logs = run.logs()
    assert f"registered with the MLRun API server {standin.url}" in logs
    # the token: nowhere in the run's logs, results, RunSpec or anything else the platform stored
    assert TOKEN not in logs and TOKEN not in json.dumps(run.to_dict())
    assert (dh_home / "data" / "runs" / run.id / "runspec.json").is_file()
    assert _files_with(dh_home, TOKEN) == []


def test_a_failed_mlrun_run_is_registered_and_the_run_is_error(standin: Standin, dh_home: Path) -> None:
    fn = dh.new_function(project="demo", name="bad", kind="mlrun", source={"code": BAD}, handler="logs_then_fails")
    run = fn.run(action="job")
    _assert_error(run, "the MLRun run bad-logs-then-fails ended error: after logging", dh_home)
    assert f"(run registered with the MLRun API server {standin.url})" in (run.status.message or "")
    state = standin.state()
    [(key, record)] = state["runs"].items()
    assert key.startswith("demo/") and record["status"]["state"] == "error"
    assert "after logging" in record["status"]["error"]
    assert state["artifacts"] == {}  # its artifact was never uploaded by the platform: not registered either
    assert not state["auth"]  # no token configured: no Authorization header


# -- bad input ----------------------------------------------------------------------------------------
def test_the_server_failing_an_artifact_store_leaves_nothing_anywhere(standin: Standin, dh_home: Path) -> None:
    standin.fail_artifacts(after=1)  # the first artifact is stored, the second gets HTTP 500
    fn = dh.new_function(project="demo", name="two", kind="mlrun", source={"code": BAD}, handler="two_outputs")
    run = fn.run(action="job")
    _assert_error(run, f"cannot register the run with the MLRun API server {standin.url}: ", dh_home)
    assert "the stand-in was told to fail artifact stores" in (run.status.message or "")
    state = standin.state()
    assert state["artifacts"] == {} and state["runs"] == {}  # the first artifact was deleted again
    puts = [c for c in state["calls"] if c.startswith("PUT ")]
    deletes = [c for c in state["calls"] if c.startswith("DELETE ")]
    assert len({*puts}) == 2 and len(deletes) == 2  # both tried (MLRun retries the 500), both deleted
    assert not any(c.startswith("POST /api/v1/projects/demo/runs/") for c in state["calls"])


def test_an_unreachable_server_fails_the_run_with_its_url(monkeypatch: pytest.MonkeyPatch, dh_home: Path) -> None:
    from digitalhub_provider.sdk.context import reset_context

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there (MLRun retries for about 30 s)
    monkeypatch.setenv("DIGITALHUB_MLRUN_API", url)
    monkeypatch.setenv("DIGITALHUB_MLRUN_TOKEN", TOKEN)
    reset_context()
    fn = dh.new_function(project="demo", name="two", kind="mlrun", source={"code": BAD}, handler="two_outputs")
    run = fn.run(action="job")
    _assert_error(run, f"cannot register the run with the MLRun API server {url}: ", dh_home)
    assert "Connection refused" in (run.status.message or "")
    assert TOKEN not in run.logs() and _files_with(dh_home, TOKEN) == []


# -- in a pod ---------------------------------------------------------------------------------------
@pytest.mark.usefixtures("airflow_db")
@pytest.mark.timeout(300)
def test_in_a_pod_the_connection_names_the_server_and_the_token_comes_from_a_secret(
    standin: Standin, s3_endpoint: str, tmp_path: Path, dh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MlrunJobOperator with the Kubernetes launcher: the pod (the k8s stand-in runs it with the mlrun
    environment's Python, as the mlrun runtime image would) gets the server from the connection and the
    token only from the Kubernetes secret, and registers the run with artifacts on S3."""
    import boto3

    from digitalhub_provider.launchers.envs import ensure_environment
    from digitalhub_provider.operators import MlrunJobOperator
    from digitalhub_provider.runtimes.registry import environment_of
    from digitalhub_provider.sdk.context import reset_context
    from tests.k8s_standin.server import StandinK8s
    from tests.test_kubernetes_launcher import FAST, S3_KEY, S3_SECRET, _context

    python = ensure_environment(os.environ["DIGITALHUB_ENVS_DIR"], *environment_of("mlrun", {}))
    bucket = f"dh-mlrun-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
                 region_name="us-east-1").create_bucket(Bucket=bucket)  # fmt: skip
    monkeypatch.delenv("DIGITALHUB_MLRUN_API")  # the worker has no such variable: only the connection names it
    stores = {
        "DIGITALHUB_DATA_URL": f"s3://{bucket}/data",
        "DIGITALHUB_S3_ENDPOINT_URL": s3_endpoint,
        "DIGITALHUB_S3_ACCESS_KEY_ID": S3_KEY,
        "DIGITALHUB_S3_SECRET_ACCESS_KEY": S3_SECRET,
    }
    for name, value in stores.items():
        monkeypatch.setenv(name, value)  # the test process reads the same stores as the task
    reset_context()
    with StandinK8s(executables={"python": python, "python3": python}) as k8s:
        k8s.add_secret("dh", "dh-credentials", {"DIGITALHUB_S3_ACCESS_KEY_ID": S3_KEY,
                                                "DIGITALHUB_S3_SECRET_ACCESS_KEY": S3_SECRET,
                                                "DIGITALHUB_MLRUN_TOKEN": TOKEN})  # fmt: skip
        extra = {
            "launcher": "kubernetes", "namespace": "dh", "kube_config_path": k8s.kubeconfig_path(tmp_path),
            "credentials_secret": "dh-credentials", "data_url": f"s3://{bucket}/data", "s3_endpoint_url": s3_endpoint,
            "metadata_url": f"sqlite:///{dh_home / 'metadata.db'}", "pod_operator_kwargs": FAST,
            "default_image": "registry.local/dh-{runtime}:{python}", "mlrun_api": standin.url, "mlrun_token": TOKEN,
        }  # fmt: skip
        conn = {"conn_type": "digitalhub", "login": S3_KEY, "password": S3_SECRET, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_DH_MLRUN_K8S", json.dumps(conn))
        op = MlrunJobOperator(
            task_id="pod",
            project="demo",
            source={"code": BAD},
            handler="two_outputs",
            digitalhub_conn_id="dh_mlrun_k8s",
        )
        ctx = _context("pod")
        summary = op.execute(ctx)
        [pod] = k8s.history
        pod_logs = pod.logs()
    assert summary["state"] == "COMPLETED", summary
    assert ctx["ti"].pushed["mlrun_api"] == standin.url and ctx["ti"].pushed["rows"] == 2

    manifest = pod.manifest
    container = manifest["spec"]["containers"][0]
    assert container["image"] == "registry.local/dh-mlrun:3.11"
    env = {e["name"]: e for e in container["env"]}
    assert env["DIGITALHUB_MLRUN_API"]["value"] == standin.url
    assert env["DIGITALHUB_MLRUN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "dh-credentials", "key": "DIGITALHUB_MLRUN_TOKEN"}  # fmt: skip
    assert TOKEN not in json.dumps(manifest) and TOKEN not in pod_logs
    assert f"registered with the MLRun API server {standin.url}" in pod_logs

    state = standin.state()
    assert set(state["auth"]) == {f"Authorization: Bearer {TOKEN}"}  # read from the secret by the pod
    [record] = state["runs"].values()
    assert record["status"]["state"] == "completed" and record["status"]["results"] == {"rows": 2}
    run = dh.get_run(summary["run_key"])
    paths = {
        a["artifact"]["metadata"]["key"]: a["artifact"]["spec"]["target_path"] for a in state["artifacts"].values()
    }
    assert paths == {"dataset": run.output("dataset").spec["path"], "report": run.output("report").spec["path"]}
    assert all(p.startswith(f"s3://{bucket}/data/demo/") for p in paths.values())
    assert TOKEN not in run.logs() and TOKEN not in json.dumps(run.to_dict())


# -- the connection ---------------------------------------------------------------------------------
def test_the_connection_names_the_server_for_local_runners_and_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.errors import EntityError
    from digitalhub_provider.hooks.digitalhub import DigitalHubHook
    from digitalhub_provider.hooks.fields import CONN_FIELDS
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings, runner_env

    assert CONN_FIELDS["mlrun_api"]["label"] == "MLRun API server"
    assert CONN_FIELDS["mlrun_token"]["schema"]["format"] == "password"
    extra = {"data_url": "s3://bucket/data", "mlrun_api": "http://mlrun-api:8080", "mlrun_token": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_DH_MLRUN", json.dumps({"conn_type": "digitalhub", "extra": extra}))
    settings = DigitalHubHook("dh_mlrun").get_settings()
    assert settings.mlrun_api == "http://mlrun-api:8080" and settings.mlrun_token == TOKEN
    assert TOKEN not in repr(settings)

    env = settings.to_env()  # a local runner's environment
    assert env["DIGITALHUB_MLRUN_API"] == "http://mlrun-api:8080" and env["DIGITALHUB_MLRUN_TOKEN"] == TOKEN

    pod_env = {e["name"]: e for e in runner_env(settings, KubernetesSettings(credentials_secret="dh-creds"))}
    assert pod_env["DIGITALHUB_MLRUN_API"] == {"name": "DIGITALHUB_MLRUN_API", "value": "http://mlrun-api:8080"}
    assert pod_env["DIGITALHUB_MLRUN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "dh-creds", "key": "DIGITALHUB_MLRUN_TOKEN"}  # fmt: skip
    assert TOKEN not in json.dumps(list(pod_env.values()))
    with pytest.raises(EntityError, match="names no credentials_secret"):
        runner_env(settings, KubernetesSettings())
    with pytest.raises(EntityError, match="mlrun_api URL holds a password"):
        with_password = settings.with_overrides(mlrun_api="http://u:pw@mlrun-api:8080")
        runner_env(with_password, KubernetesSettings(credentials_secret="dh-creds"))

    monkeypatch.delenv("DIGITALHUB_MLRUN_API", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_DH_PLAIN", json.dumps({"conn_type": "digitalhub", "extra": {}}))
    plain = DigitalHubHook("dh_plain").get_settings()
    assert plain.mlrun_api is None and not {"DIGITALHUB_MLRUN_API", "DIGITALHUB_MLRUN_TOKEN"} & set(plain.to_env())


def test_public_url_drops_credentials() -> None:
    from digitalhub_provider.runtimes.mlrun.register import public_url

    assert public_url("https://user:pw@mlrun.example.com:8443/base/?x=1#f") == "https://mlrun.example.com:8443/base"
    assert public_url("http://mlrun-api:8080/") == "http://mlrun-api:8080"
