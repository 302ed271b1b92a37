"""A pipeline on a KFP API server: the workflow's runner (local or in a pod) is the server's client.

Wraps the launcher that starts the runner. Before the runner starts, the
server to use goes next to the RunSpec (``kfp_target.json``: host, namespace,
experiment, the KFP run of an earlier try to reattach to); while it runs, the
KFP run's id, which the runner reports in ``kfp_run.json``, is handed to the
run controller to record; killing it also terminates the KFP run (through
``kfp.Client`` in the kfp environment, when that environment is on this
machine; the runner itself terminates it on SIGTERM too).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from digitalhub_provider.launchers.base import Handle, Launcher
from digitalhub_provider.runtimes.kfp.server import KFP_RUN_FILE, TARGET_FILE

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.runtimes.contract import RunSpec
    from digitalhub_provider.stores.context import Context

SERVER_MODULE = "digitalhub_provider.runtimes.kfp.server"


class KfpServerLauncher(Launcher):
    """``target`` is the server ({host, namespace, experiment_id, poll_seconds, reattach_run_id});
    None runs the pipeline with kfp.local in the runner's environment (nothing to add then)."""

    progress_interval = 1.0

    def __init__(self, inner: Launcher, target: dict[str, Any] | None, log: Callable[[str], None] = print) -> None:
        self.inner = inner
        self.target = target
        self.log = log
        self.name = inner.name

    def prepare(self, fn: Executable, run: Run, ctx: Context) -> str | None:
        described = self.inner.prepare(fn, run, ctx)
        url = ctx.run_url(run.id, TARGET_FILE)
        store = ctx.data_store(url)
        if self.target is None:
            store.delete(url)
            return described
        store.write_bytes(url, json.dumps(self.target).encode())
        again = self.target.get("reattach_run_id")
        self.log(f"KFP API server {self.target['host']}" + (f", reattaching to KFP run {again}" if again else ""))
        return described

    def inline_runspec(self, spec_json: bytes) -> bool:
        return self.inner.inline_runspec(spec_json)

    def start(self, spec: RunSpec, run: Run, ctx: Context) -> Handle:
        return self._wrap(self.inner.start(spec, run, ctx), run, ctx)

    def reattach(self, fn: Executable, run: Run, ctx: Context) -> Handle | None:
        handle = self.inner.reattach(fn, run, ctx)
        return None if handle is None else self._wrap(handle, run, ctx)

    def is_deferral(self, exc: BaseException) -> bool:
        return self.inner.is_deferral(exc)

    def _wrap(self, handle: Handle, run: Run, ctx: Context) -> Handle:
        if self.target is None:
            return handle
        python = getattr(self.inner, "python", None)  # the kfp environment, when it is on this machine
        return KfpServerRun(handle, ctx.run_url(run.id, KFP_RUN_FILE), ctx, self.target, python, self.log)


class KfpServerRun(Handle):
    def __init__(
        self,
        runner: Handle,
        report_url: str,
        ctx: Context,
        target: dict[str, Any],
        python: str | None,
        log: Callable[[str], None],
    ) -> None:
        self.runner = runner
        self.report_url = report_url
        self.ctx = ctx
        self.target = target
        self.python = python
        self.log = log
        self.status = runner.status
        self.log_path = runner.log_path
        self.pid = runner.pid
        self.kfp_run_id: str | None = None

    def wait(self, timeout: float | None = None) -> int:
        return self.runner.wait(timeout)

    def poll(self) -> int | None:
        return self.runner.poll()

    def progress(self) -> dict[str, Any]:
        """The KFP run's id and host, once, as soon as the runner reported them."""
        if self.kfp_run_id is not None:
            return {}
        store = self.ctx.data_store(self.report_url)
        if not store.exists(self.report_url):
            return {}
        info = json.loads(store.read_bytes(self.report_url))
        self.kfp_run_id = str(info["kfp_run_id"])
        self.log(f"KFP run {info['kfp_run_id']} on {info['kfp_host']}" + " (reattached)" * bool(info.get("reattached")))
        return {"kfp_run_id": info["kfp_run_id"], "kfp_host": info["kfp_host"]}

    def kill(self) -> None:
        self.progress()
        self.runner.kill()
        self.terminate()

    def terminate(self) -> None:
        """Terminate the KFP run through kfp.Client in the kfp environment (best effort)."""
        if not self.kfp_run_id or not self.python:
            return
        try:
            res = subprocess.run(
                [self.python, "-m", SERVER_MODULE, "terminate", self.target["host"], self.kfp_run_id],
                capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )  # fmt: skip
            if res.returncode != 0:
                self.log(f"could not terminate KFP run {self.kfp_run_id}: {res.stderr.strip()[-500:]}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.log(f"could not terminate KFP run {self.kfp_run_id}: {exc}")
