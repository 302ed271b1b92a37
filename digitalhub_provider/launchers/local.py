"""The local launcher: the runner as a subprocess in its own process group.

Its stdout and stderr (merged, in order) stream line by line to a callback
(the caller's console, or the Airflow task log); the runner writes the run's
log file itself, so that a caller killed meanwhile loses neither the log nor
the run. When the runner exits, what is left of its process group is killed.
The environment is the function's: this interpreter, or a cached virtualenv
(see :mod:`.envs`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitalhub_provider.config import ENV_TEE_LOGS
from digitalhub_provider.launchers.base import Handle, Launcher, log_path
from digitalhub_provider.launchers.processes import group_alive, start_ticks
from digitalhub_provider.runtimes.contract import RUNSPEC_FILE
from digitalhub_provider.runtimes.registry import (
    BUILD_ACTION,
    LOCAL_IMAGE_SCHEME,
    SERVE_ACTION,
    SERVE_REQUIREMENTS,
    environment_of,
    serves_here,
)

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run
    from digitalhub_provider.entities.executable import Executable
    from digitalhub_provider.runtimes.contract import RunSpec
    from digitalhub_provider.stores.context import Context

RUNNER_MODULE = "digitalhub_provider.runtimes"


class LocalLauncher(Launcher):
    name = "local"

    def __init__(self, on_line: Callable[[str], None] | None = None, ready_timeout: float = 300.0) -> None:
        self.on_line = on_line
        self.python: str | None = None
        self.ready_timeout = ready_timeout  # seconds a service has to answer its readiness probe

    def prepare(self, fn: Executable, run: Run, ctx: Context) -> str:
        """The interpreter of the function's environment (built once per requirements, then cached).
        A build also runs its ``instructions`` and names the environment in :attr:`image`; a function
        version a build made (``spec.image`` ``venv://{key}``) runs in that environment."""
        from digitalhub_provider.launchers.envs import built_environment, ensure_environment  # venv, hashlib

        envs_dir = ctx.settings.envs_dir or str(Path(tempfile.gettempdir()) / "digitalhub-envs")
        action = run.run_kind.action
        image = str(fn.spec.get("image") or "")
        if action != BUILD_ACTION and image.startswith(LOCAL_IMAGE_SCHEME):
            self.python = built_environment(envs_dir, image.removeprefix(LOCAL_IMAGE_SCHEME))
            return self.python
        python_version, requirements = environment_of(fn.kind, fn.spec)
        if fn.kind == "python" and (
            action == BUILD_ACTION or (action == SERVE_ACTION and (requirements or not serves_here(python_version)))
        ):
            # a service's server and handler types (a built environment serves too)
            requirements = [*requirements, *SERVE_REQUIREMENTS]
        instructions = list(run.spec.get("instructions") or []) if action == BUILD_ACTION else []
        self.python = ensure_environment(
            envs_dir, python_version, requirements, log=self.on_line or print, instructions=instructions
        )
        if action == BUILD_ACTION and self.python != sys.executable:
            self.image = LOCAL_IMAGE_SCHEME + Path(self.python).parent.parent.name
        return self.python

    def start(self, spec: RunSpec, run: Run, ctx: Context) -> LocalProcess:
        if self.python is None:
            raise RuntimeError("LocalLauncher.start before prepare")
        path = log_path(ctx, run.id)
        # The runner writes its own log file: it outlives a caller that is killed.
        env = {**os.environ, **ctx.settings.to_env(), "PYTHONUNBUFFERED": "1", ENV_TEE_LOGS: str(path)}
        url = ctx.run_url(spec.run_id, RUNSPEC_FILE)
        process = LocalProcess(self.python, url, env, path, on_line=self.on_line)
        if spec.service is not None:
            from digitalhub_provider.launchers.service import wait_ready

            service = wait_ready(process, spec.service, self.ready_timeout)
            if service is not None:
                process.status["service"] = service
        return process


class LocalProcess(Handle):
    def __init__(
        self,
        python: str,
        runspec_url: str,
        env: dict[str, str],
        log_path: Path,
        on_line: Callable[[str], None] | None = None,
        cwd: str | None = None,
    ) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()  # the run has a log from its start, before the runner writes to it
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [python, "-u", "-m", RUNNER_MODULE, runspec_url],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.status: dict[str, Any] = {
            "launcher": "local",
            "pid": self.pid,
            "host": socket.gethostname(),
            "started": start_ticks(self.pid),  # with pid and host: the runner, not a later process given its pid
        }
        self.killed = False
        self._reader = threading.Thread(target=self._pump, args=(on_line,), daemon=True)
        self._reader.start()

    def _pump(self, on_line: Callable[[str], None] | None) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if on_line is not None:
                try:
                    on_line(line)
                except Exception:
                    pass
        self.proc.stdout.close()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code (raises ``subprocess.TimeoutExpired``). What the handler started and
        left running (its process group) ends with the runner: it would hold the output pipe open
        and outlive the run."""
        code = self.proc.wait(timeout=timeout)
        if group_alive(self.proc.pid):
            kill_group(self.proc.pid, grace=1.0)
        self._reader.join(timeout=10)
        return code

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self, grace: float = 5.0) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after ``grace`` seconds."""
        self.killed = True
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(self.proc.pid, signal.SIGKILL)  # the runner and whatever it started
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(pid: int, grace: float = 5.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        return
    deadline = threading.Event()
    for _ in range(int(grace * 10)):
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        deadline.wait(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
