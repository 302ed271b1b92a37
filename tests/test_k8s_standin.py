"""The unmodified ``KubernetesPodOperator`` against the stand-in API server (tests/k8s_standin).

Most tests call ``op.execute(context)`` with a minimal context (what the Task SDK runner would
pass: ``ti``, ``run_id``, ``dag``); ``test_dag_test_*`` runs a real ``dag.test()`` in a fresh
interpreter (its own AIRFLOW_HOME and SQLite DB), where deferred triggers run inline.
Operator logs go through structlog to stdout, hence ``capfd``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

pytest.importorskip("airflow.providers.cncf.kubernetes")

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from airflow.providers.cncf.kubernetes.utils.pod_manager import (
    PodLaunchTimeoutException,
)
from airflow.providers.common.compat.sdk import AirflowException, TaskDeferred
from kubernetes.client import models as k8s_models

from tests.k8s_standin.server import StandinK8s, StandinPod

if TYPE_CHECKING:
    from airflow.sdk import Context

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(120)]

HELLO = ["python", "-c", "print('hello'); import os; print(os.environ['X'])"]


class FakeTI:
    """The bits of a RuntimeTaskInstance that KPO touches in ``execute``."""

    def __init__(self, try_number: int = 1) -> None:
        self.dag_id, self.task_id, self.map_index, self.try_number = "standin_dag", "kpo", -1, try_number
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def make_context(try_number: int = 1) -> Context:
    """The minimal context ``execute`` reads (no ``task_state_store``: reattach uses label search)."""
    ti = FakeTI(try_number)
    dag = SimpleNamespace(dag_id=ti.dag_id)
    return cast("Context", {"ti": ti, "task_instance": ti, "run_id": "manual__2025-01-01", "dag": dag})


@pytest.fixture
def k8s() -> Iterator[StandinK8s]:
    with StandinK8s() as server:
        yield server


def make_op(k8s: StandinK8s, tmp_path: Path, **kwargs: Any) -> KubernetesPodOperator:
    defaults: dict[str, Any] = {
        "task_id": "kpo",
        "image": "python:3.11",
        "namespace": "default",
        "kubernetes_conn_id": None,
        "config_file": k8s.kubeconfig_path(tmp_path),
        "poll_interval": 0.3,
        "startup_check_interval_seconds": 0.2,  # sync mode only sleeps on it; the trigger sends it as an int
    }
    return KubernetesPodOperator(**{**defaults, **kwargs})


def first_pod(k8s: StandinK8s, ready: Callable[[StandinPod], bool]) -> StandinPod:
    """Wait until the first pod the server received satisfies ``ready``; return it."""
    pod: StandinPod = k8s.wait_for(lambda: k8s.history and ready(k8s.history[0]) and k8s.history[0])
    return pod


def calls(k8s: StandinK8s) -> list[str]:
    """The request log, with pod names and query strings shortened for comparison."""
    out = []
    for req in k8s.requests:
        method, path = req.split(" ", 1)
        path = re.sub(r"/pods/[^/?]+", "/pods/{name}", path.replace("/api/v1/namespaces/default", ""))
        out.append(f"{method} {path.split('?')[0]}" + ("?watch" if "watch=True" in path else ""))
    return out


def test_success_streams_logs_and_records_manifest(k8s: StandinK8s, tmp_path: Path, capfd: Any) -> None:
    op = make_op(k8s, tmp_path, cmds=HELLO, env_vars={"X": "xval"}, labels={"team": "dh"})
    ctx = make_context()
    assert op.execute(ctx) is None

    out = capfd.readouterr().out
    assert "[base] hello" in out and "[base] xval" in out
    assert k8s.created_count == 1 and not k8s.pods  # on_finish_action=delete_pod
    pod = k8s.history[0]
    assert cast("FakeTI", ctx["ti"]).xcoms == {"pod_name": pod.name, "pod_namespace": "default"}
    assert (pod.phase, pod.exit_code, pod.logs()) == ("Succeeded", 0, "hello\nxval\n")
    container = pod.manifest["spec"]["containers"][0]
    assert (container["name"], container["image"], container["command"]) == ("base", "python:3.11", HELLO)
    assert container["env"] == [{"name": "X", "value": "xval"}]
    assert pod.manifest["spec"]["restartPolicy"] == "Never"
    labels = pod.manifest["metadata"]["labels"]
    assert labels["team"] == "dh" and labels["try_number"] == "1" and labels["dag_id"] == "standin_dag"
    assert labels["task_id"] == "kpo" and labels["kubernetes_pod_operator"] == "True"
    log_reqs = [r for r in k8s.requests if "/log?" in r]
    assert log_reqs and "follow=True" in log_reqs[0] and "timestamps=True" in log_reqs[0]
    seq = calls(k8s)
    assert seq[:3] == ["GET /pods", "POST /pods", "GET /pods"]
    assert seq[-1] == "DELETE /pods/{name}" and "PATCH /pods/{name}" not in seq


def test_env_from_secrets_and_config(k8s: StandinK8s, tmp_path: Path, capfd: Any) -> None:
    k8s.add_secret("default", "db", {"password": "s3cret"})
    k8s.add_secret("default", "bulk", {"BULK_A": "a", "BULK_B": "b"})
    script = "import os; print(*(os.environ[k] for k in ('DB_PASSWORD', 'BULK_A', 'BULK_B', 'REF', 'POD')))"
    op = make_op(
        k8s,
        tmp_path,
        cmds=["python", "-c", script],
        env_vars={"BASE": "v", "REF": "$(BASE)-ref"},
        secrets=[Secret("env", "DB_PASSWORD", "db", "password"), Secret("env", None, "bulk")],
        pod_runtime_info_envs=[
            k8s_models.V1EnvVar(
                name="POD",
                value_from=k8s_models.V1EnvVarSource(
                    field_ref=k8s_models.V1ObjectFieldSelector(field_path="metadata.name")
                ),
            )
        ],
    )
    op.execute(make_context())
    pod = k8s.history[0]
    assert pod.logs() == f"s3cret a b v-ref {pod.name}\n"
    spec = pod.manifest["spec"]["containers"][0]
    secret_ref = {"secretKeyRef": {"key": "password", "name": "db"}}
    assert {"name": "DB_PASSWORD", "valueFrom": secret_ref} in spec["env"]
    assert spec["envFrom"] == [{"secretRef": {"name": "bulk"}}]
    assert f"[base] s3cret a b v-ref {pod.name}" in capfd.readouterr().out


def test_missing_secret_keeps_pod_pending(tmp_path: Path, capfd: Any) -> None:
    with StandinK8s(startup_delay=0.1) as k8s:
        op = make_op(
            k8s,
            tmp_path,
            cmds=["true"],
            secrets=[Secret("env", "P", "nope", "k")],
            startup_timeout_seconds=2,
            log_pod_spec_on_failure=False,
        )
        with pytest.raises(AirflowException, match="returned a failure") as err:
            op.execute(make_context())
        assert isinstance(err.value.__context__, PodLaunchTimeoutException)  # re-raised by cleanup()
        pod = k8s.history[0]
        assert pod.container().state["waiting"]["reason"] == "CreateContainerConfigError"
        assert 'secret "nope" not found' in capfd.readouterr().out  # KPO logs the pod's Warning event
        assert not k8s.pods


def test_failure_raises_and_marks_pod_failed(k8s: StandinK8s, tmp_path: Path, capfd: Any) -> None:
    op = make_op(
        k8s,
        tmp_path,
        cmds=["python", "-c", "print('about to fail'); raise SystemExit(3)"],
        termination_message_policy="FallbackToLogsOnError",
        log_pod_spec_on_failure=False,
    )
    with pytest.raises(AirflowException, match="returned a failure") as err:
        op.execute(make_context())
    assert "about to fail" in str(err.value)  # the termination message (FallbackToLogsOnError)
    pod = k8s.history[0]
    assert pod.phase == "Failed" and pod.exit_code == 3
    terminated = pod.obj["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "Error" and terminated["message"] == "about to fail\n"
    assert pod.obj["metadata"]["labels"]["already_checked"] == "True"  # cleanup() patched it ...
    assert calls(k8s)[-2:] == ["PATCH /pods/{name}", "DELETE /pods/{name}"]  # ... then deleted it
    assert "[base] about to fail" in capfd.readouterr().out


def _pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_on_kill_deletes_pod_and_kills_process_group(k8s: StandinK8s, tmp_path: Path) -> None:
    op = make_op(k8s, tmp_path, cmds=["sh", "-c", "sleep 300 & echo child=$!; wait"])
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(make_context())
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    pod = first_pod(k8s, lambda p: "child=" in p.logs())
    child = int(pod.logs().split("child=")[1].split()[0])
    leader = pod.container().proc
    assert leader is not None and _pid_alive(child) and op.pod is not None

    op.on_kill()
    worker.join(30)
    assert not worker.is_alive()
    assert not k8s.pods and "DELETE /pods/{name}" in calls(k8s)
    assert leader.returncode is not None and not _pid_alive(child)
    assert pod.exit_code == 143 and pod.phase == "Failed"  # SIGTERM'd, as a kubelet reports it
    # execute() then fails on the vanished pod; cleanup() is skipped because the task was killed
    assert errors and "Not Found" in str(errors[0])
    assert calls(k8s).count("DELETE /pods/{name}") == 1


class FakeStateStore(dict[str, Any]):
    """Airflow 3.3's ``task_state_store`` as KPO uses it (``get``/``set``), kept across attempts."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value


@pytest.mark.filterwarnings("ignore::airflow.exceptions.AirflowProviderDeprecationWarning")
@pytest.mark.parametrize("state_store", [False, True], ids=["label-search", "task-state-store"])
def test_reattach_follows_running_pod(k8s: StandinK8s, tmp_path: Path, capfd: Any, state_store: bool) -> None:
    cmds = ["sh", "-c", "echo started; sleep 3; echo finished"]
    store = FakeStateStore()
    ctx1, ctx2 = make_context(try_number=1), make_context(try_number=2)
    if state_store:
        ctx1["task_state_store"] = ctx2["task_state_store"] = store  # type: ignore[typeddict-item]
    # Attempt 1: the worker builds and creates the pod, then "crashes" (execute stops there).
    first = make_op(k8s, tmp_path, cmds=cmds, reattach_on_restart=True)
    first.get_or_create_pod(first.build_pod_request_obj(ctx1), ctx1)
    pod = first_pod(k8s, lambda p: "started" in p.logs())
    k8s.requests.clear()

    make_op(k8s, tmp_path, cmds=cmds, reattach_on_restart=True).execute(ctx2)

    assert k8s.created_count == 1 and "POST /pods" not in calls(k8s)
    if state_store:  # durable execution: the stored identity is read back first
        assert store == {"pod_identifier": {"name": pod.name, "namespace": "default"}}
        assert calls(k8s)[0] == "GET /pods/{name}"
    else:  # no store: find_pod() lists pods by label selector
        assert calls(k8s)[0] == "GET /pods" and "labelSelector=" in k8s.requests[0]
    out = capfd.readouterr().out
    assert f"Reusing existing pod '{pod.name}'" in out and "`try_number` of pod: 1" in out
    assert "[base] started" in out and "[base] finished" in out
    assert pod.phase == "Succeeded" and not k8s.pods


@pytest.mark.filterwarnings("ignore::airflow.exceptions.AirflowProviderDeprecationWarning")
def test_no_reattach_creates_new_pod_and_retires_old(k8s: StandinK8s, tmp_path: Path) -> None:
    cmds = ["sh", "-c", "echo run; sleep 0.5"]
    first, ctx1 = make_op(k8s, tmp_path, cmds=cmds, reattach_on_restart=False), make_context(try_number=1)
    first.get_or_create_pod(first.build_pod_request_obj(ctx1), ctx1)
    # KPO picks the newest duplicate by creationTimestamp, which (as in the real API) has 1s
    # resolution; two pods created within the same second tie and KPO would keep the old one.
    time.sleep(1.1)
    make_op(k8s, tmp_path, cmds=cmds, reattach_on_restart=False).execute(make_context(try_number=2))

    old, new = k8s.history
    assert k8s.created_count == 2 and not k8s.pods
    assert old.obj["metadata"]["labels"]["already_checked"] == "True"  # process_duplicate_label_pods
    assert new.manifest["metadata"]["labels"]["try_number"] == "2" and new.phase == "Succeeded"


@pytest.mark.parametrize(("code", "status"), [(0, "success"), (3, "failed")])
def test_deferrable_trigger_and_reentry(tmp_path: Path, capfd: Any, code: int, status: str) -> None:
    """What the triggerer and the resumed task do, driven by hand: defer, run trigger, re-enter."""
    with StandinK8s(startup_delay=1.5) as k8s:  # Pending long enough for the events watch to start
        kwargs: dict[str, Any] = {
            "cmds": ["sh", "-c", f"echo deferred-run; sleep 1; exit {code}"],
            "deferrable": True,
            "startup_check_interval_seconds": 1,
            "log_pod_spec_on_failure": False,
        }
        ctx = make_context()
        with pytest.raises(TaskDeferred) as deferred:
            make_op(k8s, tmp_path, **kwargs).execute(ctx)
        classpath, trigger_kwargs = deferred.value.trigger.serialize()
        assert classpath.endswith("KubernetesPodTrigger") and deferred.value.method_name == "trigger_reentry"
        trigger = type(deferred.value.trigger)(**trigger_kwargs)  # as the triggerer re-creates it

        async def first_event() -> Any:
            return await anext(trigger.run())

        event = asyncio.run(first_event())
        assert event.payload["status"] == status

        resumed = make_op(k8s, tmp_path, **kwargs)  # a fresh task object resumes
        if code:
            with pytest.raises(AirflowException, match="returned a failure") as err:
                resumed.trigger_reentry(ctx, event.payload)
            # the trigger's message depends on whether the container ended before or after it started polling
            assert re.search("Container state failed|pod failed", str(err.value.__context__))
        else:
            resumed.trigger_reentry(ctx, event.payload)
        assert "[base] logs: deferred-run" in capfd.readouterr().out
        pod = k8s.history[0]
        assert pod.exit_code == code and not k8s.pods and k8s.created_count == 1
        assert "GET /events?watch" in calls(k8s)  # AsyncKubernetesHook.watch_pod_events


def test_deferred_trigger_on_kill_deletes_pod(k8s: StandinK8s, tmp_path: Path) -> None:
    """A user kill while deferred: the triggerer cancels the trigger, then (Airflow 3.3+) awaits on_kill."""
    op = make_op(k8s, tmp_path, cmds=["sleep", "300"], deferrable=True, startup_check_interval_seconds=1)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(make_context())
    trigger = deferred.value.trigger

    async def run_then_kill() -> None:
        task = asyncio.create_task(anext(trigger.run()))
        await asyncio.to_thread(first_pod, k8s, lambda p: p.phase == "Running")
        await asyncio.sleep(0.5)  # the trigger is now polling the running pod
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await trigger.on_kill()

    asyncio.run(run_then_kill())
    pod = k8s.history[0]
    k8s.wait_for(lambda: not k8s.pods)
    proc = pod.container().proc
    assert proc is not None and proc.returncode is not None and pod.exit_code == 143
    assert calls(k8s)[-1] == "DELETE /pods/{name}"


def test_close_kills_pods_left_running(tmp_path: Path) -> None:
    with StandinK8s(startup_delay=0) as k8s:
        op = make_op(k8s, tmp_path, cmds=["sleep", "300"])
        ctx = make_context()
        op.get_or_create_pod(op.build_pod_request_obj(ctx), ctx)
        pod = first_pod(k8s, lambda p: p.container().proc is not None)
        proc = pod.container().proc
        assert proc is not None and _pid_alive(proc.pid)
    assert proc.returncode is not None and not _pid_alive(proc.pid)


def test_dag_test_sync_and_deferrable(tmp_path: Path) -> None:
    """A real ``dag.test()`` run (fresh interpreter): one sync task, one deferrable task."""
    driver = Path(__file__).parent / "k8s_standin" / "dagtest_driver.py"
    with StandinK8s() as k8s:
        common = {
            "image": "python:3.11",
            "namespace": "default",
            "poll_interval": 0.5,
            "startup_check_interval_seconds": 1,
        }
        spec = {
            "kubeconfig": k8s.kubeconfig_path(tmp_path),
            "tasks": {
                "sync_task": {**common, "cmds": ["python", "-c", "print('sync-ran')"]},
                "deferred_task": {**common, "deferrable": True, "cmds": ["python", "-c", "print('deferred-ran')"]},
            },
        }
        proc = subprocess.run(
            [sys.executable, str(driver), str(tmp_path / "home"), json.dumps(spec)],
            check=False,
            capture_output=True,
            text=True,
            timeout=110,
        )
        result_line = [line for line in proc.stdout.splitlines() if line.startswith("DAGTEST_RESULT ")]
        assert proc.returncode == 0 and result_line, proc.stdout[-3000:] + proc.stderr[-3000:]
        result = json.loads(result_line[0].split(" ", 1)[1])
        assert result["tasks"] == {"sync_task": "success", "deferred_task": "success"}, result
        assert result["dag_run"] == "success"
        logs = {p.manifest["metadata"]["labels"]["task_id"]: p.logs() for p in k8s.history}
        assert logs == {"sync_task": "sync-ran\n", "deferred_task": "deferred-ran\n"}
        assert "[base] sync-ran" in proc.stdout and "[base] logs: deferred-ran" in proc.stdout
        assert k8s.created_count == 2 and not k8s.pods


def test_a_container_without_command_runs_its_images_entrypoint(tmp_path: Path, capfd: Any) -> None:
    """``entrypoints`` maps an image (its tag ignored) to the argv its containers run without a
    ``command``; the container's ``args`` follow it, as with a real image's ENTRYPOINT."""
    entry = tmp_path / "entry.py"
    entry.write_text("import sys\nprint('entrypoint got', sys.argv[1:])\n")
    with StandinK8s(entrypoints={"registry.local/tool": [sys.executable, str(entry)]}) as server:
        op = make_op(server, tmp_path, image="registry.local/tool:v2", cmds=[], arguments=["--flag", "x"])
        op.execute(make_context())
        assert "entrypoint got ['--flag', 'x']" in server.history[0].logs()


def test_secrets_are_read_by_name_and_a_missing_one_is_404(k8s: StandinK8s) -> None:
    import httpx

    k8s.add_secret("dh", "push-config", {".dockerconfigjson": "{}"})
    headers = {"Authorization": f"Bearer {k8s.token}"}
    found = httpx.get(f"{k8s.url}/api/v1/namespaces/dh/secrets/push-config", headers=headers)
    assert found.status_code == 200 and found.json()["data"] == {".dockerconfigjson": "e30="}
    missing = httpx.get(f"{k8s.url}/api/v1/namespaces/dh/secrets/nope", headers=headers)
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
