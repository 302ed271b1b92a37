"""Scale-out on Airflow's CeleryExecutor: Redis as the broker, PostgreSQL for Airflow and for the metadata
store, moto's S3 server as the data store, two Celery workers (separate process groups, their own
temporary folders), with the real scheduler, api-server and dag-processor.

The example DAGs give the results they give on the LocalExecutor; mapped runs spread over both
workers; a worker SIGKILLed mid-task: its try fails by heartbeat, the retry runs on the other worker,
and the run the dead worker followed is reconciled (ERROR, its runner killed), none left RUNNING.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import digitalhub_provider as dh
from digitalhub_provider.sdk.context import reset_context
from tests.airflow_servers import REPO, AirflowDeployment, airflow_deployment, celery_env
from tests.servers import create_database, redis_server
from tests.test_e2e_scheduler import DATA, csv_url, expected_report, run_to_success  # noqa: F401 - csv_url: a fixture

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.s3, pytest.mark.timeout(900)]

HEARTBEAT_TIMEOUT = 20  # seconds without a task heartbeat before the scheduler fails its try


@pytest.fixture
def celery(tmp_path: Path, pg_url: str, s3_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AirflowDeployment]:
    """The deployment: what every worker shares (PostgreSQL, S3) in DIGITALHUB_* and AIRFLOW__*."""
    suffix = uuid.uuid4().hex[:8]
    airflow_db = create_database(pg_url, f"airflow_{suffix}")
    metadata_db = create_database(pg_url, f"dh_{suffix}")
    monkeypatch.setenv("DIGITALHUB_METADATA_URL", metadata_db)
    reset_context()
    dags = tmp_path / "dags"
    shutil.copytree(REPO / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    for dag in (REPO / "tests" / "celery_dags").glob("*.py"):
        shutil.copy(dag, dags / dag.name)
    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis") as broker:
        extra = {
            **celery_env(airflow_db, broker, dags),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
        }
        with airflow_deployment(tmp_path / "airflow", extra_env=extra, celery_workers=2) as af:
            yield af
        assert af.left_behind == [], f"processes left behind: {af.left_behind}"


def _worker_of(af: AirflowDeployment, pid: int) -> str | None:
    """The worker (``worker-1``/``worker-2``) that ``pid`` descends from."""
    workers = {proc.pid: name for name, proc in af.procs.items() if name.startswith("worker-")}
    try:
        process: psutil.Process | None = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
    while process is not None:
        if process.pid in workers:
            return workers[process.pid]
        process = process.parent()
    return None


def _kill_worker(af: AirflowDeployment, name: str, spare: int) -> None:
    """SIGKILL the Celery worker ``name`` and every process under it (its pool, the task's supervisor
    and the task process, which has a session of its own), as a lost worker machine would lose them;
    the runner ``spare`` (in its own group) outlives them, as a runner may."""
    worker = af.procs.pop(name)  # not a server to check or stop any more
    tree = [p for p in psutil.Process(worker.pid).children(recursive=True) if p.pid != spare]
    os.killpg(worker.pid, signal.SIGKILL)
    for process in tree:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    worker.wait(10)
    psutil.wait_procs(tree, timeout=10)


def _wait_for(check: Any, af: AirflowDeployment, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        af.check_running()
        if value := check():
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s\n{af.diagnostics()}")


def test_the_example_dags_and_mapped_runs_on_two_celery_workers(celery: AirflowDeployment, csv_url: str) -> None:  # noqa: F811
    af = celery
    for dag_id in ("world_cities", "greet_with_params", "mapped_rows"):
        af.wait_dag(dag_id)
    run_id = run_to_success(af, "world_cities", {"url": csv_url})
    report = dh.get_run(af.xcom("world_cities", run_id, "report", "return_value")["run_key"])
    assert report.results() == expected_report(DATA / "world-cities.csv")
    assert dh.get_dataitem("world-cities", project="demo").spec["path"].startswith("s3://")
    greet_run_id = run_to_success(af, "greet_with_params", {"name": "Ada", "times": 2, "shout": True})
    assert af.xcom("greet_with_params", greet_run_id, "greet", "greeting") == "HELLO, ADA! HELLO, ADA!"

    mapped = run_to_success(af, "mapped_rows", {})
    runs = [r for r in dh.list_runs("demo") if f"airflow.run_id={mapped}" in (r.metadata.labels or [])]
    assert sorted(r.results()["square"] for r in runs) == [n * n for n in range(8)]
    tmpdirs = {r.results()["tmpdir"] for r in runs}
    assert tmpdirs == {str(af.home / "worker-1" / "tmp"), str(af.home / "worker-2" / "tmp")}  # both workers ran runs
    assert all(r.state == "COMPLETED" for r in dh.list_runs("demo"))


def test_a_worker_killed_mid_task_is_retried_on_the_other_and_its_run_reconciled(
    celery: AirflowDeployment, tmp_path: Path
) -> None:
    af = celery
    af.wait_dag("celery_failover")
    gate = tmp_path / "gate"
    run_id = af.trigger("celery_failover", {"gate": str(gate)})

    def first_run() -> Any:
        runs = [r for r in dh.list_runs("demo") if r.state == "RUNNING" and r.status.get("pid")]
        return runs[0] if runs else None

    first = _wait_for(first_run, af, 240, "the first try's run RUNNING")
    follower = int(first.status.get("follower")["pid"])
    runner = int(first.status.get("pid"))
    killed = _worker_of(af, follower)
    assert killed is not None, f"the task process {follower} is not under a Celery worker"
    _kill_worker(af, killed, spare=runner)
    assert psutil.pid_exists(runner)

    def second_run() -> Any:
        runs = [r for r in dh.list_runs("demo") if r.id != first.id]
        return runs[0] if runs else None

    second = _wait_for(second_run, af, 240, "the retry's run")
    survivor = _worker_of(af, int(second.status.get("follower", {}).get("pid") or 0))
    gate.touch()
    state = af.wait_run("celery_failover", run_id, timeout=240)
    assert state == "success", (
        f"{af.task_states('celery_failover', run_id)}\n{af.diagnostics('celery_failover', run_id)}"
    )
    assert survivor is not None and survivor != killed

    stale = dh.get_run(first.key)
    assert stale.state == "ERROR"
    assert stale.status.message == "the worker running try 1 stopped before the run finished"
    assert not psutil.pid_exists(runner) or psutil.Process(runner).status() == psutil.STATUS_ZOMBIE
    assert dh.get_run(second.key).results() == {"answer": "through"}
    assert [r.state for r in dh.list_runs("demo") if r.state not in ("COMPLETED", "ERROR")] == []


def test_a_worker_killed_mid_task_without_retries_leaves_its_run_to_the_maintenance_dag(
    celery: AirflowDeployment, tmp_path: Path
) -> None:
    """No retry will look at the run: the task fails by heartbeat, the run stays RUNNING with its orphaned
    runner until the maintenance DAG, asking Airflow, ends it ERROR and kills the runner."""
    af = celery
    af.wait_dag("celery_no_retry")
    af.wait_dag("digitalhub_maintenance")
    run_id = af.trigger("celery_no_retry", {"gate": str(tmp_path / "gate")})  # never opened

    def running() -> Any:
        runs = [r for r in dh.list_runs("demo") if r.state == "RUNNING" and r.status.get("pid")]
        return runs[0] if runs else None

    run = _wait_for(running, af, 240, "the run RUNNING")
    runner = int(run.status.get("pid"))
    killed = _worker_of(af, int(run.status.get("follower")["pid"]))
    assert killed is not None
    _kill_worker(af, killed, spare=runner)
    assert af.wait_run("celery_no_retry", run_id, timeout=240) == "failed"
    assert dh.get_run(run.key).state == "RUNNING" and psutil.pid_exists(runner)  # nobody has looked yet

    maintenance = af.trigger("digitalhub_maintenance", {})
    assert af.wait_run("digitalhub_maintenance", maintenance, timeout=240) == "success", af.diagnostics(
        "digitalhub_maintenance", maintenance
    )
    assert af.xcom("digitalhub_maintenance", maintenance, "reconcile_runs", "return_value") == {
        "unfinished": 1,
        "ERROR": 1,
    }
    stale = dh.get_run(run.key)
    assert stale.state == "ERROR"
    assert stale.status.message == (
        f"runner lost: its Airflow task instance celery_no_retry/{run_id}/hold is failed; its runner process "
        f"{runner}, left running, was killed"
    )
    assert not psutil.pid_exists(runner) or psutil.Process(runner).status() == psutil.STATUS_ZOMBIE
