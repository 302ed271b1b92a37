"""The serve action on Kubernetes: a Deployment and a Service, against the stand-in API server.

No cluster runs here: tests/k8s_standin serves the apps/v1 Deployment and core/v1 Service API on
127.0.0.1, runs each Deployment's pods (one per replica) as local processes with their containerPort
published on a free local port, answers their readiness probes, and forwards the Services' in-cluster
URLs to a ready pod through its ``proxy_url`` (the cluster's network, as an HTTP proxy). Manifests
are checked against the Kubernetes OpenAPI schemas (kubernetes-validate, strict).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

import digitalhub_provider as dh
from digitalhub_provider.entities import State
from digitalhub_provider.runtimes.contract import ENV_SERVICE_PORT, SERVICE_READY_PATH
from tests.k8s_standin.server import StandinK8s, StandinPod
from tests.test_kubernetes_launcher import S3_KEY, S3_SECRET, _context, _op, k8s, k8s_conn

__all__ = ["k8s", "k8s_conn"]  # the fixtures, shared with the job pods' tests

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.timeout(300)]

CODE = """
import json, os, time
from pathlib import Path


def init(context, factor=2, gate=None):
    if gate:
        print("init waits at the gate", flush=True)
        while not Path(gate).exists():
            time.sleep(0.05)
    context.factor = factor
    context.calls = 0
    context.logger.info("init done")


def score(context, event):
    context.calls += 1
    rows = json.loads(event.body or b"{}").get("rows", [])
    return {"scores": [r * context.factor for r in rows], "calls": context.calls, "worker": os.getpid()}


def init_fails(context):
    raise RuntimeError("model file missing")
"""


def _serve_op(task_id: str = "score", **kwargs: Any) -> Any:
    args = {"code": CODE, "handler": "score", "init_function": "init", "action": "serve", **kwargs}
    return _op(task_id=task_id, **args)


def _pods_of(k8s: StandinK8s, name: str) -> list[StandinPod]:
    """Every pod the Deployment ``name`` ever had (deleted ones too)."""
    with k8s.cond:
        return [p for p in k8s.history if p.owner == ("dh", name)]


def _all_gone(k8s: StandinK8s, name: str) -> bool:
    """Neither the Deployment nor the Service is there, and no process of its pods runs."""
    k8s.wait_for(lambda: not [p for p in k8s.pods.values() if p.owner == ("dh", name)], timeout=60)
    with k8s.cond:
        objects = ("dh", name) in k8s.deployments or ("dh", name) in k8s.services
    return not objects and not any(p.running_procs() for p in _pods_of(k8s, name))


def _invoke(k8s: StandinK8s, run: Any, **kwargs: Any) -> Any:
    """``run.invoke`` on the Service's in-cluster URL, through the stand-in's cluster network."""
    return run.invoke(proxies={"http": k8s.proxy_url}, **kwargs)


# -- manifests ------------------------------------------------------------------------------------------
RICH = {
    "resources": {"cpu": {"requests": "250m", "limits": "2"}, "mem": "2Gi", "gpu": {"limits": "1"}},
    "node_selector": [{"key": "pool", "value": "gpu"}],
    "volumes": [{"volume_type": "persistent_volume_claim", "name": "models", "mount_path": "/models",
                 "spec": {"claim_name": "pvc-models"}}],
    "envs": [{"name": "MODE", "value": "fast"}],
    "secrets": ["db-credentials"],
}  # fmt: skip


def _manifests(op: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The Deployment and the Service the operator's launcher would create, without creating them."""
    from digitalhub_provider.hooks.digitalhub import DigitalHubHook
    from digitalhub_provider.launchers.kubernetes_service import KubernetesServiceLauncher
    from digitalhub_provider.sdk.controller import RunController

    hook = DigitalHubHook("dh_k8s")
    ctx = hook.get_context()
    fn = op.resolve_function(ctx)
    run = RunController(ctx).create(fn, action="serve", local_execution=False, **op.task_arguments())
    op._kubernetes = True
    launcher = op.make_launcher(hook, ctx, fn, run, _context(op.task_id))
    assert isinstance(launcher, KubernetesServiceLauncher)
    launcher.prepare(fn, run, ctx)
    deployment, service = launcher._manifests(run, ctx)
    return deployment, service, run


@pytest.mark.leaves_unfinished_runs  # runs made for their manifests only
@pytest.mark.parametrize(
    ("task_args", "service_type", "replicas"),
    [
        ({}, None, None),
        ({**RICH, "service_name": "api", "service_type": "NodePort", "replicas": 3}, "NodePort", 3),
        ({"profile": "small", "service_type": "LoadBalancer"}, "LoadBalancer", None),
        ({"run_as_root": True, "service_type": "ClusterIP", "replicas": 2}, "ClusterIP", 2),
    ],
)
def test_deployment_and_service_manifests_validate_strictly(
    k8s: StandinK8s, k8s_conn: dict, task_args: dict, service_type: str | None, replicas: int | None
) -> None:
    import kubernetes_validate

    deployment, service, run = _manifests(_serve_op(**task_args))
    kubernetes_validate.validate(deployment, "1.35.0", strict=True)
    kubernetes_validate.validate(service, "1.35.0", strict=True)
    name = f"score-{task_args.get('service_name') or run.id[:8]}"
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == name
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "dh"
    assert deployment["spec"]["replicas"] == (replicas or 1)
    assert service["spec"]["type"] == (service_type or "ClusterIP")
    run_label = {"digitalhub.run": run.id}
    template = deployment["spec"]["template"]
    for labels in (deployment["metadata"]["labels"], template["metadata"]["labels"], service["metadata"]["labels"]):
        assert run_label.items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"] == run_label
    pod = template["spec"]
    assert pod["restartPolicy"] == "Always"
    container = pod["containers"][0]
    assert container["command"] == ["python", "-m", "digitalhub_provider.runtimes"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": SERVICE_READY_PATH, "port": "http"}
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    env = {e["name"]: e for e in container["env"]}
    assert env[ENV_SERVICE_PORT]["value"] == "8080"
    assert env["DIGITALHUB_S3_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "dh-credentials"
    text = json.dumps([deployment, service])
    assert S3_SECRET not in text and S3_KEY not in text  # credentials only by reference
    if task_args.get("run_as_root"):
        assert "securityContext" not in pod and "securityContext" not in container
    else:
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    if task_args.get("profile"):
        assert pod["nodeSelector"] == {"pool": "small"}
        assert container["resources"]["requests"] == {"cpu": "250m", "memory": "128Mi"}
    if task_args.get("secrets"):
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert {"secretRef": {"name": "db-credentials"}} in container["envFrom"]
        assert pod["volumes"] == [{"name": "models", "persistentVolumeClaim": {"claimName": "pvc-models"}}]
        assert env["MODE"]["value"] == "fast" and pod["nodeSelector"] == {"pool": "gpu"}
    assert k8s.created_count == 0 and not k8s.deployment_history  # prepared only


# -- end to end on the stand-in ------------------------------------------------------------------------
def test_a_service_serves_keeps_its_init_state_and_run_stop_deletes_both_objects(
    k8s: StandinK8s, k8s_conn: dict
) -> None:
    summary = _serve_op(service_name="e2e", parameters={"factor": 3}).execute(_context("score"))
    assert summary["state"] == State.RUNNING.value
    url = "http://score-e2e.dh.svc.cluster.local:8080/"
    assert summary["service"] == {"url": url, "host": "score-e2e.dh.svc.cluster.local", "port": 8080}
    run = dh.get_run(summary["run_key"])
    assert run.state == State.RUNNING.value and run.status.get("service")["url"] == url
    assert run.status.get("launcher") == "kubernetes" and run.status.get("deployment") == "score-e2e"
    assert run.status.get("follower") is None  # nobody follows a Deployment: the cluster is the evidence
    assert ("dh", "score-e2e") in k8s.deployments and ("dh", "score-e2e") in k8s.services
    (pod,) = _pods_of(k8s, "score-e2e")
    assert pod.obj["metadata"]["labels"]["digitalhub.run"] == run.id
    assert pod.running_procs()

    first = _invoke(k8s, run, json={"rows": [1, 2]})
    assert first.status_code == 200 and first.json()["scores"] == [3, 6] and first.json()["calls"] == 1
    assert _invoke(k8s, run, json={"rows": [5]}).json()["calls"] == 2  # the init function's context, kept
    live = run.logs()  # while it serves: its pods' logs so far, from the cluster the run recorded
    assert f"==> pod dh/{pod.name} <==" in live and "init done" in live

    stopped = run.stop()  # the SDK's stop, with no connection at hand: the cluster the run recorded
    assert stopped.state == State.STOPPED.value and dh.get_run(run.key).state == State.STOPPED.value
    assert _all_gone(k8s, "score-e2e")
    assert "init done" in run.logs()  # the pod's log, uploaded by its runner as it stopped
    assert k8s.created_count == 1  # one pod: the Deployment's, none through KubernetesPodOperator


def test_replicas_are_pods_and_the_stop_operator_deletes_both_objects(k8s: StandinK8s, k8s_conn: dict) -> None:
    from digitalhub_provider.operators import DigitalHubStopRunOperator

    summary = _serve_op(service_name="pair", replicas=2, service_type="NodePort").execute(_context("score"))
    run = dh.get_run(summary["run_key"])
    assert len(_pods_of(k8s, "score-pair")) == 2
    k8s.wait_for(lambda: k8s.deployment_view(k8s.deployments[("dh", "score-pair")])["status"].get("readyReplicas") == 2)
    workers = {_invoke(k8s, run, json={"rows": [1]}).json()["worker"] for _ in range(6)}
    assert len(workers) == 2  # the Service spreads the calls over both pods, one worker process each
    assert k8s.services[("dh", "score-pair")]["spec"]["ports"][0]["nodePort"] >= 30000

    stop = DigitalHubStopRunOperator(task_id="stop", run_key=summary["run_key"], digitalhub_conn_id="dh_k8s")
    assert stop.execute(_context("stop")) == {"run_key": run.key, "state": State.STOPPED.value,
                                              "was": State.RUNNING.value}  # fmt: skip
    assert _all_gone(k8s, "score-pair")
    assert dh.get_run(run.key).state == State.STOPPED.value


def test_killing_the_serve_task_while_its_service_starts_deletes_both_objects(
    k8s: StandinK8s, k8s_conn: dict, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # never opened: the init function waits, the service is never ready
    op = _serve_op(service_name="slow", parameters={"gate": str(gate)})
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            op.execute(_context("score"))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    waiting = lambda: [p for p in _pods_of(k8s, "score-slow") if "init waits at the gate" in p.logs()]
    k8s.wait_for(waiting, timeout=90)
    op.on_kill()
    thread.join(90)
    assert not thread.is_alive()
    assert errors and "ended STOPPED" in str(errors[0])
    assert _all_gone(k8s, "score-slow")
    assert dh.list_runs("demo")[0].state == State.STOPPED.value


def test_an_init_function_that_raises_ends_error_and_leaves_nothing(k8s: StandinK8s, k8s_conn: dict) -> None:
    from airflow.sdk.exceptions import AirflowException

    op = _serve_op(service_name="broken", init_function="init_fails")
    with pytest.raises(AirflowException, match="ended ERROR: init function 'init_fails' raised RuntimeError: model"):
        op.execute(_context("score"))
    assert _all_gone(k8s, "score-broken")
    run = dh.list_runs("demo")[0]
    assert run.state == State.ERROR.value and 'raise RuntimeError("model file missing")' in run.status.get("traceback")


# -- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"service_type": "Public"}, "service_type.*must be one of ClusterIP, NodePort, LoadBalancer"),
        ({"replicas": 0}, "replicas must be 1 or more for a service, got 0"),
        ({"service_name": "Not_A_Name"}, "invalid service name 'Not_A_Name'"),
    ],
)
def test_bad_service_arguments_are_refused_before_anything_is_created(
    k8s: StandinK8s, k8s_conn: dict, kwargs: dict, message: str
) -> None:
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException, match=message):
        _serve_op(**kwargs).execute(_context("score"))
    assert dh.list_runs("demo") == []
    assert k8s.created_count == 0 and not k8s.deployment_history and not k8s.service_history


def test_a_name_another_run_serves_under_is_refused_before_anything_is_created(k8s: StandinK8s, k8s_conn: dict) -> None:
    from airflow.sdk.exceptions import AirflowException

    first = dh.get_run(_serve_op(service_name="taken").execute(_context("score"))["run_key"])
    with pytest.raises(AirflowException, match=rf"a Deployment dh/score-taken already exists \(run {first.id}\)"):
        _serve_op(task_id="other", function="score", service_name="taken").execute(_context("other"))
    assert len(k8s.deployment_history) == 1 and len(k8s.service_history) == 1
    assert [r.state for r in dh.list_runs("demo") if r.id != first.id] == [State.ERROR.value]
    first.stop()
    assert _all_gone(k8s, "score-taken")


# -- the reconciler ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("how", "state", "message"),
    [
        (
            "kill",
            State.ERROR,
            r"runner lost: pod dh/score-lost-\w+-\w+ of its service ended Failed \(exit code 137.*\)",
        ),
        ("delete", State.ERROR, r"Terminated: the runner received signal 15 \(SIGTERM\)"),
    ],
)
def test_the_reconciler_finds_a_service_whose_pods_died(
    k8s: StandinK8s, k8s_conn: dict, how: str, state: State, message: str
) -> None:
    """Serving, it is left RUNNING; its process SIGKILLed (no RunResult), it is ERROR "runner lost" and
    its objects deleted; its Deployment deleted behind its back, its runner's RunResult (terminated by
    the pod's deletion) decides, and its Service is deleted."""
    from digitalhub_provider.cli import reconcile

    run = dh.get_run(_serve_op(service_name="lost").execute(_context("score"))["run_key"])
    assert reconcile(conn_id="dh_k8s") == {"unfinished": 1}
    assert dh.get_run(run.key).state == State.RUNNING.value
    (pod,) = _pods_of(k8s, "score-lost")
    if how == "kill":
        proc = pod.container().proc
        assert proc is not None
        os.killpg(proc.pid, signal.SIGKILL)
        k8s.wait_for(lambda: pod.phase == "Failed", timeout=60)
    else:
        k8s.delete_deployment("dh", "score-lost")
        k8s.wait_for(lambda: pod.gone, timeout=60)
    assert reconcile(conn_id="dh_k8s") == {"unfinished": 1, state.value: 1}
    stored = dh.get_run(run.key)
    assert stored.state == state.value
    assert re.fullmatch(message, stored.status.get("message")), stored.status.get("message")
    assert _all_gone(k8s, "score-lost")


SERVE_WORKER = """
import sys
from tests.test_kubernetes_serve import _context, _serve_op
_serve_op(service_name="orphan", parameters={"gate": sys.argv[1]}).execute(_context("score"))
"""


def test_a_service_whose_worker_died_before_it_was_ready_is_ended_and_deleted(
    k8s: StandinK8s, k8s_conn: dict, tmp_path: Path
) -> None:
    """The serve task's worker SIGKILLed while the init function runs: the run (READY, its follower
    gone) ends ERROR at the next reconcile, and the Deployment and Service it had created are deleted."""
    import subprocess
    import sys

    from digitalhub_provider.cli import reconcile

    repo = Path(__file__).resolve().parent.parent
    worker = subprocess.Popen([sys.executable, "-c", SERVE_WORKER, str(tmp_path / "gate")], cwd=repo,
                              env=dict(os.environ), start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        waiting = lambda: [p for p in _pods_of(k8s, "score-orphan") if "init waits at the gate" in p.logs()]
        k8s.wait_for(waiting, timeout=90)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert ("dh", "score-orphan") in k8s.deployments  # serving on, nobody to delete it
    assert reconcile(conn_id="dh_k8s") == {"unfinished": 1, State.ERROR.value: 1}
    run = dh.list_runs("demo")[0]
    assert (
        run.status.get("message")
        == f"runner lost: the process that started it ({worker.pid} on {run.status.get('follower')['host']}) ended"
    )
    assert _all_gone(k8s, "score-orphan")


def test_the_standin_validates_deployments_and_services_and_its_network_needs_a_ready_pod() -> None:
    """What the tests above rely on from the stand-in, refused as an API server refuses it."""
    import requests

    with StandinK8s() as server:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {server.token}"
        container = {"name": "c", "image": "i", "command": ["true"], "ports": [{"containerPort": 8080}]}
        template = {"metadata": {"labels": {"app": "x"}}, "spec": {"restartPolicy": "Never", "containers": [container]}}
        body = {"metadata": {"name": "x"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}}
        refused = api.post(f"{server.url}/apis/apps/v1/namespaces/dh/deployments", json=body)
        assert refused.status_code == 422 and 'restartPolicy: Unsupported value: "Never"' in refused.json()["message"]
        bad_type = {"metadata": {"name": "x"}, "spec": {"type": "Public", "ports": [{"port": 80}]}}
        refused = api.post(f"{server.url}/api/v1/namespaces/dh/services", json=bad_type)
        assert refused.status_code == 422 and 'spec.type: Unsupported value: "Public"' in refused.json()["message"]
        service = {"metadata": {"name": "x"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}
        assert api.post(f"{server.url}/api/v1/namespaces/dh/services", json=service).status_code == 201
        proxies = {"http": server.proxy_url}
        unready = requests.get("http://x.dh.svc.cluster.local/", proxies=proxies, timeout=10)
        assert unready.status_code == 503 and unready.text == "service dh/x has no ready endpoint"
        unknown = requests.get("http://y.dh.svc.cluster.local/", proxies=proxies, timeout=10)
        assert unknown.status_code == 404 and unknown.text == 'services "y" not found'
        assert api.delete(f"{server.url}/api/v1/namespaces/dh/services/x").status_code == 200
        assert not server.services and not server.deployments and server.created_count == 0
