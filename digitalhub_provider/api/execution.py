"""Runs submitted through the REST API, executed by Airflow: the ``digitalhub_runs`` DAG.

A client (DigitalHub Core's SDK) that creates a run with ``local_execution=False`` leaves
its execution to the platform. The API triggers the ``digitalhub_runs`` DAG with the
run's key as conf: inside Airflow's api-server through Airflow's own code
(:class:`InAirflow`), standalone through Airflow's REST API with configured credentials
(:class:`AirflowRestApi`). Stopping the run fails that DAG run, so Airflow kills the task
(whose ``on_kill`` stops the runner: process or pod).

Everything that touches Airflow's internals is in :class:`InAirflow`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from digitalhub_provider.errors import RunError

DAG_ID = "digitalhub_runs"


class ExecutionError(RunError):
    """Airflow could not be asked to execute (or stop) a run; the message says why. ``status``: the
    HTTP status Airflow's REST API answered, when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AirflowRun:
    dag_id: str
    dag_run_id: str

    def to_dict(self) -> dict[str, str]:
        return {"dag_id": self.dag_id, "dag_run_id": self.dag_run_id}


class Executor(Protocol):
    def submit(self, run_id: str, run_key: str) -> AirflowRun: ...

    def stop(self, airflow_run: AirflowRun) -> None: ...


def dag_run_id(run_id: str) -> str:
    return f"digitalhub__{run_id}"


class NotConfigured:
    """The standalone server without an Airflow to execute on: remote runs end ERROR saying so."""

    def submit(self, run_id: str, run_key: str) -> AirflowRun:
        raise ExecutionError(
            "this server executes no runs (local_execution=False): start it with --airflow-url and Airflow's "
            "credentials (DIGITALHUB_API_AIRFLOW_URL, _USER, _PASSWORD), or serve the API inside Airflow's "
            "api-server, or run with local_execution=True"
        )

    def stop(self, airflow_run: AirflowRun) -> None:
        return None


class InAirflow:
    """Inside Airflow's api-server: the DAG run is created and failed by Airflow's own functions."""

    def submit(self, run_id: str, run_key: str) -> AirflowRun:
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session
        from airflow.utils.types import DagRunTriggeredByType

        try:
            with create_session() as session:
                model = session.get(DagModel, DAG_ID)
                if model is None:
                    raise ExecutionError(
                        f"the {DAG_ID} DAG is not deployed: add a file holding "
                        f"'from digitalhub_provider.dags.digitalhub_runs import dag' to a DAG bundle"
                    )
                if model.is_paused:
                    raise ExecutionError(f"the {DAG_ID} DAG is paused in Airflow: unpause it to execute runs")
                created = trigger_dag(
                    DAG_ID,
                    run_id=dag_run_id(run_id),
                    conf={"run_key": run_key},
                    triggered_by=DagRunTriggeredByType.REST_API,
                    session=session,
                )
        except ExecutionError:
            raise
        except Exception as exc:  # Airflow's own refusal (a DAG that failed to parse, a database error)
            raise ExecutionError(f"Airflow could not trigger {DAG_ID}: {type(exc).__name__}: {exc}") from None
        if created is None:
            raise ExecutionError(f"Airflow did not create a run of {DAG_ID}")
        return AirflowRun(DAG_ID, created.run_id)

    def stop(self, airflow_run: AirflowRun) -> None:
        from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
        from airflow.models.dagbag import DBDagBag
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        try:
            with create_session() as session:
                dr = session.scalar(
                    select(DagRun).where(DagRun.dag_id == airflow_run.dag_id, DagRun.run_id == airflow_run.dag_run_id)
                )
                if dr is None or dr.state in ("success", "failed"):
                    return
                dag = DBDagBag().get_dag_for_run(dr, session=session)
                if dag is not None:
                    set_dag_run_state_to_failed(dag=dag, run_id=dr.run_id, commit=True, session=session)
        except Exception as exc:
            what = f"{type(exc).__name__}: {exc}"
            raise ExecutionError(f"Airflow could not stop {airflow_run.dag_run_id}: {what}") from None


class AirflowRestApi:
    """The standalone server: Airflow's public REST API (v2), logged in with a user and password."""

    def __init__(self, url: str, user: str, password: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.user = user
        self._password = password
        self.timeout = timeout
        self._token: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the password
        return f"AirflowRestApi({self.url!r}, user={self.user!r})"

    def _request(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        import httpx

        for attempt in (1, 2):
            with self._lock:
                if self._token is None:
                    self._token = self._login()
                token = self._token
            try:
                res = httpx.request(
                    method, f"{self.url}{path}", json=json, timeout=self.timeout,
                    headers={"Authorization": f"Bearer {token}"},
                )  # fmt: skip
            except httpx.HTTPError as exc:
                raise ExecutionError(f"Airflow at {self.url} cannot be reached: {type(exc).__name__}: {exc}") from None
            if res.status_code == 401 and attempt == 1:  # the token expired: log in again
                with self._lock:
                    self._token = None
                continue
            if res.status_code >= 400:
                answer = f"{res.status_code}: {res.text[:300]}"
                raise ExecutionError(f"Airflow at {self.url} answered {method} {path} with {answer}", res.status_code)
            return res.json() if res.content else None
        raise ExecutionError(f"Airflow at {self.url} refused the credentials of {self.user!r}")

    def _login(self) -> str:
        import httpx

        try:
            res = httpx.post(
                f"{self.url}/auth/token", json={"username": self.user, "password": self._password}, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise ExecutionError(f"Airflow at {self.url} cannot be reached: {type(exc).__name__}: {exc}") from None
        if res.status_code >= 400:
            raise ExecutionError(f"Airflow at {self.url} refused the login of {self.user!r} ({res.status_code})")
        return str(res.json()["access_token"])

    def submit(self, run_id: str, run_key: str) -> AirflowRun:
        try:
            dag = self._request("GET", f"/api/v2/dags/{DAG_ID}")
        except ExecutionError as exc:
            if exc.status == 404:
                raise ExecutionError(
                    f"the {DAG_ID} DAG is not deployed on Airflow at {self.url}: add a file holding "
                    f"'from digitalhub_provider.dags.digitalhub_runs import dag' to a DAG bundle"
                ) from None
            raise
        if dag.get("is_paused"):
            raise ExecutionError(f"the {DAG_ID} DAG is paused in Airflow at {self.url}: unpause it to execute runs")
        body = {"dag_run_id": dag_run_id(run_id), "logical_date": None, "conf": {"run_key": run_key}}
        created = self._request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", body)
        return AirflowRun(DAG_ID, str(created["dag_run_id"]))

    def stop(self, airflow_run: AirflowRun) -> None:
        path = f"/api/v2/dags/{airflow_run.dag_id}/dagRuns/{airflow_run.dag_run_id}"
        self._request("PATCH", path, {"state": "failed"})
