"""Runs in pods through the unmodified KubernetesPodOperator, against the stand-in API server.

No cluster runs here: tests/k8s_standin serves the pod API on 127.0.0.1 and runs each pod's
command as a local process; data goes to moto's S3 server. Generated manifests are checked
against the Kubernetes OpenAPI schemas (kubernetes-validate).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

import digitalhub_provider as dh
from tests.airflow_helpers import load_dag, task_states, xcoms
from tests.k8s_standin.server import StandinK8s

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.timeout(300)]
TEST_DAGS = Path(__file__).parent / "dags"
S3_KEY, S3_SECRET = "k8s-key-id", "k8s-Secret-Value-42"
FAST = {"poll_interval": 0.3, "startup_check_interval_seconds": 1, "base_container_status_polling_interval": 0.3}


@pytest.fixture
def k8s() -> Iterator[StandinK8s]:
    with StandinK8s() as server:
        yield server


@pytest.fixture
def k8s_conn(k8s: StandinK8s, s3_endpoint: str, tmp_path: Path, dh_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Connection ``dh_k8s``: Kubernetes by default, S3 on moto, credentials in a Kubernetes secret."""
    bucket = f"dh-k8s-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
                 region_name="us-east-1").create_bucket(Bucket=bucket)  # fmt: skip
    k8s.add_secret("dh", "dh-credentials", {"DIGITALHUB_S3_ACCESS_KEY_ID": S3_KEY,
                                            "DIGITALHUB_S3_SECRET_ACCESS_KEY": S3_SECRET})  # fmt: skip
    extra = {
        "launcher": "kubernetes", "namespace": "dh", "kube_config_path": k8s.kubeconfig_path(tmp_path),
        "credentials_secret": "dh-credentials", "data_url": f"s3://{bucket}/data", "s3_endpoint_url": s3_endpoint,
        "metadata_url": f"sqlite:///{dh_home / 'metadata.db'}", "default_image": "registry.local/dh-python:{python}",
        "pod_operator_kwargs": FAST, "profiles": {"small": {"resources": {"cpu": "250m", "mem": "128Mi"},
                                                             "node_selector": {"pool": "small"}}},
    }  # fmt: skip
    conn = {"conn_type": "digitalhub", "login": S3_KEY, "password": S3_SECRET, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_DH_K8S", json.dumps(conn))
    # the test process reads the same stores as the tasks
    monkeypatch.setenv("DIGITALHUB_DATA_URL", extra["data_url"])
    monkeypatch.setenv("DIGITALHUB_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("DIGITALHUB_S3_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("DIGITALHUB_S3_SECRET_ACCESS_KEY", S3_SECRET)
    from digitalhub_provider.sdk.context import reset_context

    reset_context()
    return {"bucket": bucket, "extra": extra, "conn": conn}


def _s3_keys(endpoint: str, bucket: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
                      region_name="us-east-1")  # fmt: skip
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_dag_runs_jobs_in_pods_sync_and_deferrable(k8s: StandinK8s, k8s_conn: dict, s3_endpoint: str) -> None:
    dr = load_dag("k8s_job.py", TEST_DAGS).test()
    assert str(dr.state) == "success", task_states(dr)
    runs = dh.list_runs("demo")
    assert sorted(r.status.state for r in runs) == ["COMPLETED", "COMPLETED"]
    x = xcoms("k8s_job", dr.run_id)
    assert x[("sync_pod", "total")] == 6 and x[("deferred_pod", "total")] == 10
    table = dh.get_dataitem(x[("sync_pod", "table")])
    assert table.spec["path"].startswith(f"s3://{k8s_conn['bucket']}/data/demo/dataitem/table/")
    assert list(table.as_df()["i"]) == [0, 1, 2, 3]
    keys = _s3_keys(s3_endpoint, k8s_conn["bucket"])
    assert any(k.endswith("/data.parquet") for k in keys) and any(k.endswith("/result.json") for k in keys)

    assert k8s.created_count == 2 and not k8s.pods  # one pod each, deleted when done
    sync_run = dh.get_run(x[("sync_pod", "return_value")]["run_key"])
    assert sync_run.spec["local_execution"] is False and sync_run.status.get("launcher") == "kubernetes"
    assert "making 4 rows in a pod" in sync_run.logs()  # the pod's log is stored with the run
    pod = next(p for p in k8s.history if p.manifest["metadata"]["labels"]["digitalhub.run"] == sync_run.id)
    manifest = pod.manifest
    text = json.dumps(manifest)
    assert S3_SECRET not in text and S3_KEY not in text  # credentials only by reference
    env = {e["name"]: e for e in manifest["spec"]["containers"][0]["env"]}
    assert env["DIGITALHUB_S3_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "dh-credentials", "key": "DIGITALHUB_S3_SECRET_ACCESS_KEY"}  # fmt: skip
    spec = manifest["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 1000
    container = spec["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["image"] == "registry.local/dh-python:3.11"
    assert container["command"] == ["python", "-m", "digitalhub_provider.runtimes"]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    labels = manifest["metadata"]["labels"]
    assert labels["digitalhub.project"] == "demo" and labels["digitalhub.function"] == "make"
    assert manifest["metadata"]["annotations"]["digitalhub/run"] == sync_run.key
    assert manifest["metadata"]["namespace"] == "dh"


def _context(task_id: str, try_number: int = 1) -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(dag_id="k8s_manual", run_id="manual__1", task_id=task_id, map_index=-1,
                         try_number=try_number, pushed=pushed,
                         xcom_push=lambda key, value: pushed.__setitem__(key, value))  # fmt: skip
    return {"ti": ti, "task_instance": ti, "run_id": "manual__1", "dag": SimpleNamespace(dag_id="k8s_manual")}


FAIL = "def boom():\n    raise ValueError('broken in the pod')\n\ndef die():\n    import os\n    os._exit(3)\n"
SLOW = (
    "import time\n\ndef slow(seconds=60):\n    print('pod started', flush=True)\n"
    "    time.sleep(seconds)\n    return 'done'\n"
)


def _op(**kwargs: Any) -> Any:
    from digitalhub_provider.operators import PythonRuntimeOperator

    base = {"project": "demo", "python_version": "PYTHON3_11", "digitalhub_conn_id": "dh_k8s"}
    return PythonRuntimeOperator(**{**base, **kwargs})


def test_a_small_runspec_travels_inline_and_is_still_stored_a_large_one_only_on_s3(
    k8s: StandinK8s, k8s_conn: dict, s3_endpoint: str
) -> None:
    """The pod gets a small RunSpec in DIGITALHUB_RUNSPEC (it starts without reading S3) and the worker
    stores runspec.json for the record; a RunSpec over 64 KiB is only on S3, where the pod reads it."""
    from digitalhub_provider.runtimes.contract import ENV_RUNSPEC, INLINE_RUNSPEC_MAX, RunSpec

    code = "def add(a, b):\n    return a + b\n"
    small = _op(task_id="small", code=code, handler="add", parameters={"a": 1, "b": 2}).execute(_context("small"))
    big_list = list(range(INLINE_RUNSPEC_MAX // 4))  # ~ 4 bytes per number in JSON: over the limit
    big = _op(task_id="big", code=code, handler="add", parameters={"a": [0], "b": big_list}).execute(_context("big"))
    assert small["results"] == {"output": 3}
    assert big["results"]["output"]["stored_result"]["bytes"] > 64 * 1024  # too large for the record: referenced
    assert dh.get_run(big["run_key"]).result("output") == [0, *big_list]
    keys = _s3_keys(s3_endpoint, k8s_conn["bucket"])
    envs = {}
    for summary in (small, big):
        assert f"data/runs/{summary['run_id']}/runspec.json" in keys  # stored in both cases
        pod = next(p for p in k8s.history if p.manifest["metadata"]["labels"]["digitalhub.run"] == summary["run_id"])
        envs[summary["run_id"]] = {e["name"]: e.get("value") for e in pod.manifest["spec"]["containers"][0]["env"]}
    inline = RunSpec.from_json(envs[small["run_id"]][ENV_RUNSPEC].encode())
    assert inline.run_id == small["run_id"] and inline.parameters == {"a": 1, "b": 2}
    assert ENV_RUNSPEC not in envs[big["run_id"]]


def test_the_runner_uses_an_inline_runspec_only_for_its_own_url(dh_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.config import Settings
    from digitalhub_provider.runtimes.context import RunnerContext
    from digitalhub_provider.runtimes.contract import ENV_RUNSPEC, RUNSPEC_FILE, RunSpec
    from digitalhub_provider.runtimes.runner import _inline_runspec

    ctx = RunnerContext(Settings.from_env())
    spec = RunSpec(run_id="abc", run_key="k", project="p", runtime="python", action="job", function={}, source={},
                   handler="h")  # fmt: skip
    monkeypatch.setenv(ENV_RUNSPEC, spec.to_json().decode())
    assert _inline_runspec(ctx, ctx.run_url("abc", RUNSPEC_FILE)) == spec
    assert _inline_runspec(ctx, ctx.run_url("other", RUNSPEC_FILE)) is None  # another run's URL: read the store
    monkeypatch.delenv(ENV_RUNSPEC)
    assert _inline_runspec(ctx, ctx.run_url("abc", RUNSPEC_FILE)) is None


def test_failing_pods_give_runs_in_error(k8s: StandinK8s, k8s_conn: dict) -> None:
    from airflow.sdk.exceptions import AirflowException

    op = _op(task_id="boom", code=FAIL, handler="boom")
    with pytest.raises(AirflowException, match="ended ERROR: handler 'boom' raised ValueError: broken in the pod"):
        op.execute(_context("boom"))
    op = _op(task_id="die", code=FAIL, handler="die")
    with pytest.raises(AirflowException, match="ended ERROR: the pod failed before writing a result"):
        op.execute(_context("die"))
    states = {r.status.state for r in dh.list_runs("demo")}
    assert states == {"ERROR"} and k8s.created_count == 2
    assert {p.phase for p in k8s.history} == {"Failed"}


def test_killing_the_task_deletes_the_pod_and_stops_the_run(k8s: StandinK8s, k8s_conn: dict) -> None:
    op = _op(task_id="slow", code=SLOW, handler="slow")
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(errors, op.execute, _context("slow")))
    thread.start()
    pod = k8s.wait_for(lambda: k8s.history and "pod started" in k8s.history[0].logs() and k8s.history[0], timeout=60)
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive()
    assert k8s.wait_for(lambda: (pod.namespace, pod.name) not in k8s.pods, timeout=30)
    assert not pod.running_procs()
    run = dh.list_runs("demo")[0]
    assert run.status.state == "STOPPED"
    assert errors and "ended STOPPED" in str(errors[0])


def _capture(errors: list[BaseException], fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as exc:
        errors.append(exc)


WORKER = """
import json, sys
from tests.test_kubernetes_launcher import _context, _op, SLOW
op = _op(task_id="crashy", code=SLOW, handler="slow", parameters={"seconds": 4})
op.execute(_context("crashy", try_number=1))
"""


def test_retry_after_a_worker_crash_reattaches_to_the_running_pod(k8s: StandinK8s, k8s_conn: dict) -> None:
    repo = Path(__file__).resolve().parent.parent
    worker = subprocess.Popen([sys.executable, "-c", WORKER], cwd=repo, env=dict(os.environ), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        k8s.wait_for(lambda: k8s.history and "pod started" in k8s.history[0].logs(), timeout=90)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker dies; the pod goes on
        worker.wait()
    assert k8s.history[0].phase == "Running"
    op = _op(task_id="crashy", code=SLOW, handler="slow", parameters={"seconds": 4})
    ctx = _context("crashy", try_number=2)
    summary = op.execute(ctx)
    assert summary["state"] == "COMPLETED" and ctx["ti"].pushed["output"] == "done"
    assert k8s.created_count == 1  # reattached: no second pod
    runs = dh.list_runs("demo")
    assert len(runs) == 1 and runs[0].status.state == "COMPLETED"  # try 2 finished try 1's run


def _manifest(op: Any, k8s_conn: dict, task_id: str) -> dict[str, Any]:
    """The pod as KubernetesPodOperator would create it, without creating it."""
    from digitalhub_provider.hooks.digitalhub import DigitalHubHook
    from digitalhub_provider.launchers.kubernetes import KubernetesLauncher, final_pod_dict
    from digitalhub_provider.sdk.controller import RunController

    hook = DigitalHubHook("dh_k8s")
    ctx = hook.get_context()
    fn = op.resolve_function(ctx)
    run = RunController(ctx).create(fn, local_execution=False, **op.task_arguments())
    op._kubernetes = True
    launcher = op.make_launcher(hook, ctx, fn, run, _context(task_id))
    assert isinstance(launcher, KubernetesLauncher)
    launcher.prepare(fn, run, ctx)
    return final_pod_dict(launcher.reattach(fn, run, ctx).kpo, _context(task_id))


RICH = {
    "resources": {"cpu": {"requests": "250m", "limits": "2"}, "mem": "2Gi", "gpu": {"limits": "1"}},
    "node_selector": [{"key": "pool", "value": "gpu"}],
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"node_affinity": {"required_during_scheduling_ignored_during_execution": {"node_selector_terms": [
        {"match_expressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}},
    "volumes": [
        {"volume_type": "persistent_volume_claim", "name": "data", "mount_path": "/data",
         "spec": {"claim_name": "pvc-1"}},
        {"volume_type": "config_map", "name": "settings", "mount_path": "/etc/settings"},
        {"volume_type": "secret", "name": "tls", "mount_path": "/etc/tls", "spec": {"secret_name": "tls-cert"}},
        {"volume_type": "empty_dir", "name": "scratch", "mount_path": "/scratch", "spec": {"size_limit": "1Gi"}},
    ],
    "envs": [{"name": "MODE", "value": "fast"}],
    "secrets": ["db-credentials"],
}  # fmt: skip


@pytest.mark.leaves_unfinished_runs  # runs made for their manifests only
@pytest.mark.parametrize("task_args", [{}, RICH, {"profile": "small"}, {**RICH, "profile": "small", "resources": None}])
def test_generated_manifests_validate_against_the_kubernetes_schemas(k8s_conn: dict, task_args: dict) -> None:
    import kubernetes_validate

    op = _op(task_id="validate", code="def h():\n    pass\n", handler="h", **{k: v for k, v in task_args.items() if v})
    manifest = _manifest(op, k8s_conn, "validate")
    kubernetes_validate.validate(manifest, "1.35.0", strict=True)
    spec = manifest["spec"]
    if task_args.get("profile") and not task_args.get("node_selector"):
        assert spec["nodeSelector"] == {"pool": "small"}
    if task_args is RICH:
        container = spec["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert {"secretRef": {"name": "db-credentials"}} in container["envFrom"]
        assert {v["name"] for v in spec["volumes"]} == {"data", "settings", "tls", "scratch"}
        assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]


@pytest.mark.parametrize(
    "task_args, extra, words",
    [
        ({"resources": {"cpu": "lots"}}, {}, "invalid resource quantity 'lots' for cpu"),
        ({"profile": "huge"}, {}, "unknown profile 'huge': the connection defines small"),
        ({"secrets": ["Bad_Secret"]}, {}, "invalid secret name 'Bad_Secret'"),
        ({"volumes": [{"volume_type": "nfs", "name": "v", "mount_path": "/v"}]}, {}, "volume_type must be one of"),
        (
            {"volumes": [{"volume_type": "empty_dir", "name": "Bad Name", "mount_path": "/v"}]},
            {},
            "invalid volume name",
        ),
        ({}, {"default_image": ""}, "no image for the pod"),
        ({}, {"data_url": "/tmp/local-data"}, "the Kubernetes launcher needs an S3 data store"),
        ({}, {"credentials_secret": ""}, "names no credentials_secret"),
        ({"action": "build"}, {}, "the connection names none: set its registry extra"),  # a build needs a registry
    ],
)
def test_bad_pod_arguments_fail_before_any_pod(
    k8s: StandinK8s, k8s_conn: dict, monkeypatch: pytest.MonkeyPatch, task_args: dict, extra: dict, words: str
) -> None:
    from airflow.sdk.exceptions import AirflowException

    conn = json.loads(json.dumps(k8s_conn["conn"]))
    conn["extra"].update(extra)
    monkeypatch.setenv("AIRFLOW_CONN_DH_K8S", json.dumps(conn))
    op = _op(task_id="bad", code="def h():\n    pass\n", handler="h", **task_args)
    with pytest.raises(AirflowException, match=words.replace("(", r"\(")):
        op.execute(_context("bad"))
    assert k8s.created_count == 0
    assert all(r.status.state == "ERROR" for r in dh.list_runs("demo"))


def test_wait_for_helper_is_bounded(k8s: StandinK8s) -> None:
    with pytest.raises(TimeoutError, match=r"^condition not met within 0.5s$"):
        k8s.wait_for(lambda: False, timeout=0.5)


def test_reentry_without_a_run_to_finish_fails_and_creates_none(k8s: StandinK8s, k8s_conn: dict) -> None:
    from airflow.sdk.exceptions import AirflowException

    op = _op(task_id="lost", code=SLOW, handler="slow", deferrable=True)
    with pytest.raises(AirflowException, match="no running DigitalHub run found for this task on re-entry"):
        op.trigger_reentry(_context("lost"), {"status": "success", "name": "dh-lost", "namespace": "default"})
    assert dh.list_runs("demo") == []
    assert k8s.created_count == 0


def test_stop_while_ready_creates_no_pod(k8s: StandinK8s, k8s_conn: dict) -> None:
    from digitalhub_provider.hooks.digitalhub import DigitalHubHook
    from digitalhub_provider.launchers.kubernetes import KubernetesLauncher
    from digitalhub_provider.sdk.controller import RunController

    class StoppedWhileReady(KubernetesLauncher):
        def start(self, spec: Any, run: Any, ctx: Any) -> Any:
            RunController(ctx).stop(dh.get_run(run.key), "stopped while READY")
            return super().start(spec, run, ctx)

    op = _op(task_id="ready", code=SLOW, handler="slow")
    hook = DigitalHubHook("dh_k8s")
    ctx = hook.get_context()
    fn = op.resolve_function(ctx)
    controller = RunController(ctx)
    run = controller.create(fn, local_execution=False)
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings

    launcher = StoppedWhileReady("ready", KubernetesSettings.from_extras(hook.extras), _context("ready"))
    assert controller.execute(fn, run, launcher) is run
    assert run.state == "STOPPED" and dh.get_run(run.key).status.state == "STOPPED"
    assert k8s.created_count == 0


GATED = (
    "import os, time\nfrom pathlib import Path\n\n"
    "def at_gate(gate, then='return'):\n    print('pod started', flush=True)\n"
    "    while not Path(gate).exists():\n        time.sleep(0.05)\n"
    "    if then == 'die':\n        os._exit(3)\n    return 'done'\n"
)
GATED_WORKER = """
import sys
from tests.test_kubernetes_launcher import _context, _op, GATED
op = _op(task_id="orphan", code=GATED, handler="at_gate", parameters={"gate": sys.argv[1], "then": sys.argv[2]})
op.execute(_context("orphan"))
"""


def _orphaned_pod(k8s: StandinK8s, gate: Path, then: str) -> Any:
    """A run whose Airflow worker was SIGKILLed while its pod waits at ``gate``: the pod, on its own."""
    repo = Path(__file__).resolve().parent.parent
    worker = subprocess.Popen([sys.executable, "-c", GATED_WORKER, str(gate), then], cwd=repo, env=dict(os.environ),
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        return k8s.wait_for(lambda: k8s.history and "pod started" in k8s.history[0].logs() and k8s.history[0], 90)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


@pytest.mark.parametrize(
    ("then", "state", "message"),
    [
        ("return", "COMPLETED", None),
        ("die", "ERROR", r"runner lost: pod dh/dh-.* ended Failed \(exit code 3.*\) without a result"),
        ("delete", "ERROR", r"runner lost: its pod \(label digitalhub\.run=\w+ in namespace dh\) is gone"),
    ],
)
def test_the_reconciler_asks_the_cluster_about_a_run_whose_worker_died(
    k8s: StandinK8s, k8s_conn: dict, tmp_path: Path, then: str, state: str, message: str | None
) -> None:
    """While its pod runs the run is left RUNNING; then it is finished from its RunResult, or ERROR
    "runner lost" when the pod failed without one or vanished, and the ended pod is deleted."""
    from digitalhub_provider.cli import reconcile

    gate = tmp_path / "gate"
    pod = _orphaned_pod(k8s, gate, then)
    assert reconcile(conn_id="dh_k8s") == {"unfinished": 1}  # the pod runs: its run is left
    assert dh.list_runs("demo")[0].status.state == "RUNNING"
    if then == "delete":
        k8s.delete_pod(pod.namespace, pod.name, grace=0)
        k8s.wait_for(lambda: (pod.namespace, pod.name) not in k8s.pods, timeout=30)
    else:
        gate.touch()
        k8s.wait_for(lambda: pod.phase in ("Succeeded", "Failed"), timeout=60)
    assert reconcile(conn_id="dh_k8s") == {"unfinished": 1, state: 1}
    run = dh.list_runs("demo")[0]
    assert run.status.state == state
    if message is None:
        assert run.results() == {"output": "done"}
    else:
        assert re.fullmatch(message, run.status.get("message")), run.status.get("message")
    assert k8s.wait_for(lambda: (pod.namespace, pod.name) not in k8s.pods, timeout=30)  # no pod left behind
    assert k8s.created_count == 1


def test_a_run_the_reconciler_finished_while_its_task_was_deferred_ends_the_task_with_its_outcome(
    k8s: StandinK8s, k8s_conn: dict, tmp_path: Path
) -> None:
    """Deferred, the worker's process is gone and the pod ends: the reconciler finishes the run from its
    RunResult and deletes the pod; the task, back from the trigger, takes that outcome and its XCom."""
    from airflow.sdk.exceptions import TaskDeferred

    from digitalhub_provider.cli import reconcile
    from digitalhub_provider.sdk.context import get_context
    from digitalhub_provider.sdk.controller import RunController

    gate = tmp_path / "gate"
    op = _op(task_id="deferred", code=GATED, handler="at_gate", parameters={"gate": str(gate)}, deferrable=True)
    with pytest.raises(TaskDeferred):
        op.execute(_context("deferred"))
    pod = k8s.wait_for(lambda: k8s.history and "pod started" in k8s.history[0].logs() and k8s.history[0], 60)
    run = dh.list_runs("demo")[0]
    # The worker process that deferred has exited (a pid no process has, on this host).
    RunController(get_context()).record(run, follower={"host": run.status.get("follower")["host"], "pid": 2**22 + 7})
    gate.touch()
    k8s.wait_for(lambda: pod.phase == "Succeeded", timeout=60)
    assert reconcile(conn_id="dh_k8s") == {"unfinished": 1, "COMPLETED": 1}
    assert k8s.wait_for(lambda: (pod.namespace, pod.name) not in k8s.pods, timeout=30)
    ctx = _context("deferred")
    resumed = _op(task_id="deferred", code=GATED, handler="at_gate", parameters={"gate": str(gate)}, deferrable=True)
    summary = resumed.trigger_reentry(ctx, {"status": "error", "name": pod.name, "namespace": pod.namespace,
                                            "message": "pod not found"})  # fmt: skip
    assert summary["state"] == "COMPLETED" and ctx["ti"].pushed["output"] == "done"
    assert k8s.created_count == 1


def test_a_service_on_kubernetes_is_a_deployment_and_a_service_not_a_pod(k8s: StandinK8s, k8s_conn: dict) -> None:
    """The serve action does not go through KubernetesPodOperator (its pods end): a Deployment's pod
    serves, behind a Service (end to end: tests/test_kubernetes_serve.py)."""
    from digitalhub_provider.entities import State
    from digitalhub_provider.errors import EntityError
    from digitalhub_provider.launchers.kubernetes import pod_manifest_for_run

    code = "def echo(context, event):\n    return event.body\n"
    summary = _op(task_id="svc", code=code, handler="echo", action="serve").execute(_context("svc"))
    run = dh.get_run(summary["run_key"])
    assert run.status.state == State.RUNNING.value and summary["service"]["url"].endswith(".dh.svc.cluster.local:8080/")
    assert [d["kind"] for d in k8s.deployment_history] == ["Deployment"] and len(k8s.service_history) == 1
    assert k8s.created_count == 1 and all(p.owner is not None for p in k8s.history)  # the Deployment's pod only
    with pytest.raises(EntityError, match="the serve action runs on Kubernetes as a Deployment and a Service"):
        pod_manifest_for_run(run, dh.get_function("svc", project="demo"), run.ctx, None)  # type: ignore[arg-type]
    run.stop()
    assert k8s.wait_for(lambda: not k8s.deployments and not k8s.services and not k8s.pods, timeout=60)
    assert dh.get_run(run.key).status.state == State.STOPPED.value
