"""The production path: a compiled pipeline on a KFP API server, through ``kfp.Client``.

The runner (in the kfp environment) creates the KFP run from the compiled
package, reports its id at once in ``{run folder}/kfp_run.json`` (the control
plane records it on the workflow run's status), polls it and maps its state
with :func:`map_state`. SIGTERM (the run being stopped, or the Airflow task
killed) terminates the KFP run. A retry that finds the KFP run id of an
earlier try reattaches to it instead of submitting a second run, unless that
run already failed or was canceled.

Importing this module imports no kfp (the state mapping is used on both sides).
"""

from __future__ import annotations

import json
import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from digitalhub_provider.states import State

TARGET_FILE = "kfp_target.json"  # written by the control plane: {host, namespace, experiment_id, reattach_run_id}
KFP_RUN_FILE = "kfp_run.json"  # written by the runner as soon as the KFP run exists: {kfp_run_id, host}
ENV_HOST = "DIGITALHUB_KFP_HOST"
ENV_TOKEN = "DIGITALHUB_KFP_TOKEN"
ENV_POLL = "DIGITALHUB_KFP_POLL_SECONDS"

# KFP v2beta1 RuntimeState -> DigitalHub run state. Anything not final keeps the run RUNNING.
KFP_STATES = {
    "RUNTIME_STATE_UNSPECIFIED": State.RUNNING.value,
    "PENDING": State.RUNNING.value,
    "RUNNING": State.RUNNING.value,
    "PAUSED": State.RUNNING.value,
    "CANCELING": State.RUNNING.value,
    "SUCCEEDED": State.COMPLETED.value,
    "SKIPPED": State.COMPLETED.value,
    "FAILED": State.ERROR.value,
    "CANCELED": State.STOPPED.value,
}
FINAL = (State.COMPLETED.value, State.ERROR.value, State.STOPPED.value)


def map_state(kfp_state: Any) -> str:
    """The DigitalHub state of a KFP run state (``None`` and unknown states count as still running)."""
    return KFP_STATES.get(str(kfp_state or "").upper().rsplit(".", 1)[-1], State.RUNNING.value)


@dataclass
class ServerOutcome:
    state: str  # COMPLETED | ERROR | STOPPED
    kfp_run_id: str
    kfp_state: str
    message: str | None = None
    reattached: bool = False


class _Terminated(Exception):
    pass


def read_target(ctx: Any, run_id: str) -> dict[str, Any] | None:
    """Where to run: the control plane's target file, else ``DIGITALHUB_KFP_HOST``; None means kfp.local."""
    url = ctx.run_url(run_id, TARGET_FILE)
    store = ctx.data_store(url)
    if store.exists(url):
        target: dict[str, Any] = json.loads(store.read_bytes(url))
        if target.get("host"):
            return target
    host = os.environ.get(ENV_HOST)
    return {"host": host} if host else None


def safe_env(settings: Any) -> dict[str, str]:
    """Store locations for the step pods, with no credential: those come from the cluster (secrets, image)."""
    env = {
        k: v
        for k, v in settings.to_env().items()
        if not any(w in k for w in ("ACCESS_KEY", "SECRET", "TOKEN", "PASSWORD"))
    }
    if "DIGITALHUB_METADATA_URL" in env:
        parts = urlsplit(env["DIGITALHUB_METADATA_URL"])
        if parts.password:
            netloc = parts.netloc.rsplit("@", 1)
            user = netloc[0].split(":", 1)[0]
            env["DIGITALHUB_METADATA_URL"] = urlunsplit(parts._replace(netloc=f"{user}@{netloc[1]}"))
    env.pop("DIGITALHUB_ENVS_DIR", None)
    return env


def client_for(target: dict[str, Any]) -> Any:
    import kfp

    warnings.filterwarnings("ignore", message="This client only works with Kubeflow Pipeline", category=FutureWarning)
    return kfp.Client(
        host=target["host"],
        namespace=target.get("namespace") or "kubeflow",
        existing_token=os.environ.get(ENV_TOKEN) or None,
    )


def run_on_server(
    target: dict[str, Any],
    package: Path,
    arguments: dict[str, Any],
    display_name: str,
    report: Callable[[dict[str, Any]], None],
    log: Callable[[str], None] = print,
) -> ServerOutcome:
    """Create (or reattach to) the KFP run and poll it to its end."""
    client = client_for(target)
    poll = float(target.get("poll_seconds") or os.environ.get(ENV_POLL) or 5)
    kfp_run_id: str | None = None
    reattached = False
    previous = target.get("reattach_run_id")
    if previous:
        state = _state(client.get_run(previous))
        if map_state(state) in (State.ERROR.value, State.STOPPED.value):
            log(f"KFP run {previous} of an earlier try ended {state}: submitting a new run")
        else:
            kfp_run_id, reattached = previous, True
            log(f"reattaching to KFP run {previous} ({state}) of an earlier try")
    if kfp_run_id is None:
        created = client.run_pipeline(
            experiment_id=target.get("experiment_id"),
            job_name=display_name,
            pipeline_package_path=str(package),
            params=arguments,
            enable_caching=False,
        )
        kfp_run_id = str(created.run_id)
        log(f"created KFP run {kfp_run_id} on {target['host']}")
    report({"kfp_run_id": kfp_run_id, "kfp_host": target["host"], "reattached": reattached})
    return _poll(client, kfp_run_id, poll, reattached, log)


def _poll(client: Any, kfp_run_id: str, poll: float, reattached: bool, log: Callable[[str], None]) -> ServerOutcome:
    def on_term(signum: int, _frame: Any) -> None:
        raise _Terminated()

    try:
        previous_handler = signal.signal(signal.SIGTERM, on_term)
    except ValueError:
        previous_handler = None
    last = None
    try:
        while True:
            run = client.get_run(kfp_run_id)
            state = _state(run)
            if state != last:
                log(f"KFP run {kfp_run_id}: {state}")
                last = state
            mapped = map_state(state)
            if mapped in FINAL:
                error = getattr(run, "error", None)
                detail = getattr(error, "message", None) if error is not None else None
                message = None if mapped == State.COMPLETED.value else f"the KFP run {kfp_run_id} ended {state}"
                if message and detail:
                    message += f": {detail}"
                return ServerOutcome(mapped, kfp_run_id, state, message, reattached)
            time.sleep(poll)
    except _Terminated:
        log(f"terminating KFP run {kfp_run_id}")
        client.terminate_run(kfp_run_id)
        return ServerOutcome(
            State.STOPPED.value, kfp_run_id, "CANCELING", f"the KFP run {kfp_run_id} was terminated", reattached
        )
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _state(run: Any) -> str:
    state = getattr(run, "state", None)
    return str(state or "RUNTIME_STATE_UNSPECIFIED")


def terminate(host: str, kfp_run_id: str, namespace: str | None = None) -> None:
    """Terminate a KFP run (``python -m digitalhub_provider.runtimes.kfp.server terminate HOST RUN_ID``)."""
    client_for({"host": host, "namespace": namespace}).terminate_run(kfp_run_id)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4 or sys.argv[1] != "terminate":
        print("usage: python -m digitalhub_provider.runtimes.kfp.server terminate HOST RUN_ID", file=sys.stderr)
        sys.exit(2)
    terminate(sys.argv[2], sys.argv[3])
