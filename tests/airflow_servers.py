"""A real Airflow 3 deployment for end-to-end tests: api-server, scheduler and dag-processor.

Everything lives in a throw-away ``AIRFLOW_HOME`` (SQLite, LocalExecutor) that is given
to the subprocesses through their environment only: the session's AIRFLOW_HOME set by
conftest.py is left alone. Every server runs in its own process group; on exit the groups
are stopped and whatever the servers started (task workers, DigitalHub runners in sessions
of their own) is tracked so that the test can prove nothing was left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.servers import free_port, stop_group, wait_port

REPO = Path(__file__).resolve().parent.parent
AIRFLOW = [sys.executable, "-m", "airflow"]
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def airflow_env(home: Path, ports: dict[str, int], extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every Airflow process of the deployment.

    Starts from this process's environment (so DIGITALHUB_HOME / DIGITALHUB_ENVS_DIR set by
    the test's fixtures reach the tasks) minus any AIRFLOW__* setting, plus the deployment's own.
    ``ports``: free ports for ``api``, ``scheduler_health`` and ``worker_log_server``.
    """
    api_port = ports["api"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__FERNET_KEY": "",
            # the REST API: SimpleAuthManager, every user (and anonymous requests) an admin
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            # one secret for every process: the scheduler signs the tasks' tokens, the api-server checks them
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(64),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            # quick parsing and scheduling
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "120",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "90",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            # retries (world_cities' download has backoff_limit=3) after 1 s, not 300 s: failures fail fast
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # no 03:00 run of world_cities on unpause
            # the scheduler's health server: a port to wait for
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(ports["scheduler_health"]),
            # the scheduler's log server (task logs for the api-server), 8793 by default: a free port
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker_log_server"]),
            # on 2 busy cores the api-server's first Execution API answers can take more than the 5 s default
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def _spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )


def _alive(pid: int, created: float) -> psutil.Process | None:
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - created) > 0.01 or p.status() == psutil.STATUS_ZOMBIE:
            return None  # gone (its pid reused, or only a zombie waiting for init)
        return p
    except psutil.NoSuchProcess:
        return None


def tail(path: Path, chars: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<{exc}>"
    return text[-chars:]


@dataclass
class AirflowDeployment:
    home: Path
    api_port: int
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tracked: dict[int, tuple[float, str]] = field(default_factory=dict)
    client: httpx.Client | None = None
    stop_seconds: dict[str, float] = field(default_factory=dict)
    left_behind: list[str] | None = None  # set on exit: what survived stopping the servers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # -- processes ------------------------------------------------------------------------------
    def track(self) -> None:
        """Remember every process of the deployment: the leaders, their descendants (also those in
        sessions of their own, like DigitalHub runners) and any member of the leaders' groups."""
        groups = {p.pid for p in self.procs.values()}
        found: list[psutil.Process] = []
        for proc in self.procs.values():
            try:
                leader = psutil.Process(proc.pid)
                found.append(leader)
                found.extend(leader.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        for p in psutil.process_iter():
            try:
                if os.getpgid(p.pid) in groups:
                    found.append(p)
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
        for p in found:
            try:
                self.tracked.setdefault(p.pid, (p.create_time(), " ".join(p.cmdline())[:200]))
            except psutil.NoSuchProcess:
                pass

    def survivors(self) -> list[str]:
        """Tracked processes still running, and anything still in one of the servers' groups."""
        left = [f"{pid}: {cmd}" for pid, (created, cmd) in self.tracked.items() if _alive(pid, created)]
        groups = {p.pid for p in self.procs.values()}
        for p in psutil.process_iter(["cmdline"]):
            try:
                if os.getpgid(p.pid) in groups and p.status() != psutil.STATUS_ZOMBIE and p.pid not in self.tracked:
                    left.append(f"{p.pid} (group {os.getpgid(p.pid)}): {' '.join(p.info['cmdline'] or [])[:200]}")
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
        return left

    def kill_survivors(self) -> None:
        for pid, (created, _) in self.tracked.items():
            p = _alive(pid, created)
            if p is not None:
                try:
                    p.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    pass
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with code {proc.returncode}\n{self.diagnostics()}")

    # -- REST API ---------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        assert self.client is not None
        self.track()
        return self.client.request(method, f"/api/v2/{path.lstrip('/')}", **kwargs)

    def wait_dag(self, dag_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Poll GET /dags/{dag_id} until the dag-processor has parsed the DAG."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            res = self.api("GET", f"dags/{dag_id}")
            if res.status_code == 200:
                return dict(res.json())
            if time.monotonic() > deadline:
                errors = self.api("GET", "importErrors").text
                raise TimeoutError(
                    f"DAG {dag_id} not parsed after {timeout}s ({res.status_code} {res.text[:300]}); "
                    f"import errors: {errors[:2000]}\n{self.diagnostics()}"
                )
            time.sleep(1)

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        res = self.api("PATCH", f"dags/{dag_id}", json={"is_paused": False})
        assert res.status_code == 200, res.text
        res = self.api("POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        assert res.status_code == 200, res.text
        return str(res.json()["dag_run_id"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 240.0) -> str:
        """Poll the DAG run until it is finished; its final state."""
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            self.check_running()
            res = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")
            assert res.status_code == 200, res.text
            state = res.json()["state"]
            if state in ("success", "failed"):
                return str(state)
            time.sleep(1)
        return f"timeout ({state})"

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        res = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in res.json().get("task_instances", [])}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        res = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")
        assert res.status_code == 200, res.text
        return res.json()["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """A task's log through the REST API (the structured log's events, one a line)."""
        res = self.api(
            "GET",
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            headers={"Accept": "application/json"},
        )
        assert res.status_code == 200, res.text
        content = res.json()["content"]
        return "\n".join(str(c.get("event", c)) if isinstance(c, dict) else str(c) for c in content)

    # -- debugging ----------------------------------------------------------------------------------
    def diagnostics(self, dag_id: str | None = None, run_id: str | None = None) -> str:
        """Tails of the servers' logs and of the task logs (of one run, or all)."""
        parts = [f"==== {log.name} ====\n{tail(log)}" for log in sorted(self.home.glob("*.log"))]
        pattern = f"dag_id={dag_id}/run_id={run_id}/**/*.log" if dag_id and run_id else "dag_id=*/**/*.log"
        for log in sorted((self.home / "logs").glob(pattern)):
            parts.append(f"==== {log.relative_to(self.home)} ====\n{tail(log, 3000)}")
        return "\n".join(parts)


def celery_env(airflow_db: str, broker: str, dags: Path, slots: int = 2) -> dict[str, str]:
    """Settings of a CeleryExecutor deployment: Airflow's database and Celery's results on PostgreSQL
    (``airflow_db``, a ``postgresql+psycopg2://`` URL), ``broker`` (Redis), ``slots`` per worker."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + airflow_db,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(slots),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }


def migrate(env: dict[str, str], log: Path) -> None:
    res = subprocess.run([*AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    log.write_text(res.stdout + res.stderr)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]


def user_env(home: Path, user: str, password: str) -> dict[str, str]:
    """Settings for a deployment whose REST API needs a login (not every request an admin): one
    SimpleAuthManager admin ``user`` with ``password``."""
    passwords = home / "passwords.json"
    home.mkdir(parents=True, exist_ok=True)
    passwords.write_text(json.dumps({user: password}))
    return {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }


@contextmanager
def airflow_deployment(
    home: Path,
    extra_env: dict[str, str] | None = None,
    services: tuple[str, ...] = ("api-server", "dag-processor", "scheduler"),
    login: tuple[str, str] | None = None,
    celery_workers: int = 0,
) -> Iterator[AirflowDeployment]:
    """``airflow db migrate``, then ``services`` (api-server, scheduler and dag-processor), each in
    its own process group; all stopped on exit. The caller checks ``survivors()`` afterwards.
    ``login``: the user and password whose token the client sends (see :func:`user_env`); without
    it every request is an admin's. ``celery_workers``: that many ``airflow celery worker`` processes
    (``worker-1``, ...), each with its own temporary folder and log server port, for a deployment
    whose ``extra_env`` sets the CeleryExecutor, its broker and result backend."""
    home.mkdir(parents=True, exist_ok=True)
    ports: dict[str, int] = {}
    for name in ("api", "scheduler_health", "worker_log_server"):
        while (port := free_port()) in ports.values():
            pass
        ports[name] = port
    api_port = ports["api"]
    env = airflow_env(home, ports, extra_env)
    migrate(env, home / "migrate.log")
    dep = AirflowDeployment(home=home, api_port=api_port, env=env)
    try:
        with ExitStack() as stack:
            for name, cmd in (
                ("api-server", [*AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(api_port)]),
                ("dag-processor", [*AIRFLOW, "dag-processor"]),
                ("scheduler", [*AIRFLOW, "scheduler"]),
            ):
                if name not in services:
                    continue
                proc = _spawn(cmd, home / f"{name}.log", env)
                dep.procs[name] = proc
                stack.callback(_stop, dep, proc)  # LIFO: the scheduler first, the api-server last
            for i in range(1, celery_workers + 1):
                name = f"worker-{i}"
                tmp = home / name / "tmp"
                tmp.mkdir(parents=True, exist_ok=True)
                worker_env = {**env, "TMPDIR": str(tmp), "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
                cmd = [*AIRFLOW, "celery", "worker", "--celery-hostname", f"{name}@%h"]
                proc = _spawn(cmd, home / f"{name}.log", worker_env)
                dep.procs[name] = proc
                stack.callback(_stop, dep, proc)  # workers stop before the scheduler
            try:
                wait_port(api_port, 180, dep.procs["api-server"])
                if "scheduler" in dep.procs:
                    wait_port(ports["scheduler_health"], 180, dep.procs["scheduler"])
                dep.client = stack.enter_context(httpx.Client(base_url=dep.url, timeout=30))
                # a JWT for the REST API (with all_admins, GET /auth/token hands one out)
                if login is None:
                    res = dep.client.get("/auth/token")
                else:
                    res = dep.client.post("/auth/token", json={"username": login[0], "password": login[1]})
                assert res.status_code in (200, 201), res.text
                dep.client.headers["Authorization"] = f"Bearer {res.json()['access_token']}"
                dep.track()
            except BaseException as exc:
                raise RuntimeError(f"the Airflow deployment did not start: {exc}\n{dep.diagnostics()}") from exc
            yield dep
    finally:
        # every group is stopped by now: record (for the test to assert) and kill what survived
        dep.left_behind = dep.survivors()
        dep.kill_survivors()


def _stop(dep: AirflowDeployment, proc: subprocess.Popen[bytes]) -> None:
    dep.track()
    started = time.monotonic()
    stop_group(proc, grace=30.0)
    name = next((n for n, p in dep.procs.items() if p is proc), f"pid {proc.pid}")  # a test may have killed it
    dep.stop_seconds[name] = round(time.monotonic() - started, 1)
