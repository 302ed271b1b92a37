"""The python runtime's ``serve`` action, inside the runner: the handler as an HTTP service.

The handler contract is DigitalHub's (Nuclio's), with the ``nuclio-sdk`` package's own types:
``handler(context, event)`` per request (the second argument may be named ``events``, as the seed
names it), ``init_function(context, **parameters)`` once per worker process at start, with the
run's parameters; what it sets on ``context`` (``context.user_data``, any attribute) is there for
every request. A handler returns what a Nuclio handler returns (str, bytes, a JSON value, a
``(status, body)`` tuple, a ``context.Response``), converted by nuclio-sdk's own rules.

As in Nuclio's python runtime, a worker handles one event at a time (a synchronous handler runs in
the worker's event loop; an ``async def`` handler is awaited there): concurrency comes from
``replicas``.

The server is uvicorn, given a socket this process bound (so that a port in use fails the run at
once, with its message). ``replicas`` > 1 forks that many worker processes sharing the socket, each
running the init function. ``GET /.digitalhub/ready`` answers 200 once a worker's init function
returned: the launcher's readiness probe. The service runs until it is stopped (SIGTERM to its
process group); a handler that raises answers 500 with its message, its traceback goes to the
run's log, and the service goes on.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from digitalhub_provider.entities import State
from digitalhub_provider.errors import RunError
from digitalhub_provider.runtimes.context import RunnerContext
from digitalhub_provider.runtimes.contract import ENV_SERVICE_PORT, SERVICE_READY_PATH, RunResult, RunSpec
from digitalhub_provider.runtimes.python.job import project_for
from digitalhub_provider.runtimes.python.sources import fetch_source, load_handler
from digitalhub_provider.runtimes.registry import SERVE_MODULES
from digitalhub_provider.states import FINAL_STATES

STATE_CHECK_SECONDS = 5.0


class InitFailed(Exception):
    """The init function raised: the service does not start."""


def run_job(spec: RunSpec, ctx: RunnerContext) -> RunResult:
    """Serve until stopped; a RunResult only when the service could not start (ERROR) or ended."""
    service = spec.service or {}
    missing = [m for m in SERVE_MODULES if importlib.util.find_spec(m) is None]
    if missing:  # an image without the serve extra (the local launcher adds it to the environment itself)
        return RunResult(
            run_id=spec.run_id,
            state=State.ERROR.value,
            message=f"the serve action needs {', '.join(missing)} in the runner's environment: install the "
            "provider's serve extra in the image (images/python/Dockerfile does)",
        )
    if os.environ.get(ENV_SERVICE_PORT):  # in a container (a pod): the platform's port, one worker
        service = {"host": "0.0.0.0", "port": int(os.environ[ENV_SERVICE_PORT]), "replicas": 1}
    try:
        with tempfile.TemporaryDirectory(prefix=f"dh-serve-{spec.run_id[:8]}-") as workdir:
            location = fetch_source(spec.source, Path(workdir), ctx)
            handler = load_handler(location, spec.handler or "")
            check_handler(handler, spec.handler or "")
            init_name = (spec.function.get("spec") or {}).get("init_function")
            init = load_handler(location, init_name) if init_name else None
            sock = bind(str(service.get("host") or "127.0.0.1"), int(service.get("port") or 0))
            app = ServiceApp(handler, init, spec, ctx)
            replicas = int(service.get("replicas") or 1)
            watch_run_state(spec, ctx)
            print(f"serving {spec.handler} on {sock.getsockname()[0]}:{sock.getsockname()[1]} ({replicas} worker(s))")
            failure = serve(app, sock) if replicas <= 1 else prefork(app, sock, replicas)
    except RunError as exc:
        return RunResult(run_id=spec.run_id, state=State.ERROR.value, message=str(exc))
    if failure is not None:
        message, tb = failure
        return RunResult(run_id=spec.run_id, state=State.ERROR.value, message=message, traceback=tb)
    return RunResult(run_id=spec.run_id, state=State.STOPPED.value, message="the service stopped")


def watch_run_state(spec: RunSpec, ctx: RunnerContext, interval: float = STATE_CHECK_SECONDS) -> None:
    """End this service (SIGTERM to itself) once its run is finished in the metadata store: a stop
    from another machine, which cannot signal this process, reaches it so. A store this runner
    cannot read leaves the stop to signals."""

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                stored = ctx.metadata.get(spec.project, "run", spec.run_id)
            except Exception:
                continue
            if str((stored.get("status") or {}).get("state")) in FINAL_STATES:
                print(f"run {spec.run_id} is {stored['status']['state']}: the service stops", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="dh-run-state", daemon=True).start()


def check_handler(handler: Any, name: str) -> None:
    """A service handler takes ``(context, event)``: two positional arguments, the second ``event`` or
    ``events`` when named so (Nuclio passes them by position)."""
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in params):
        raise RunError(
            f"handler {name!r} takes ({', '.join(p.name for p in params)}): a service's handler takes (context, event)"
        )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RunError(f"the service cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(app: ServiceApp, sock: socket.socket) -> tuple[str, str] | None:
    """uvicorn on ``sock`` in this process until SIGTERM or SIGINT; the init function's failure, if any."""
    import uvicorn

    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it is down: the runner's SIGTERM handler then
    # reports the stop, as for a job.
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn's way out when the application did not start
        if app.init_failure is None:
            raise
    return app.init_failure


def prefork(app: ServiceApp, sock: socket.socket, replicas: int) -> tuple[str, str] | None:
    """``replicas`` forked workers on the one socket; the first that fails to start ends them all."""
    children: list[int] = []
    reader, writer = os.pipe()  # a worker whose init function failed says why, before it exits
    for _ in range(replicas):
        pid = os.fork()
        if pid == 0:  # a worker: serve, and tell the parent how it went
            os.close(reader)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 0
            try:
                failed = serve(app, sock)
                if failed is not None:
                    os.write(writer, json.dumps(failed).encode() + b"\n")
                    code = 3
            except BaseException:
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    os.close(writer)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        failure: tuple[str, str] | None = None
        while children:
            pid, status = os.wait()
            if pid not in children:
                continue
            children.remove(pid)
            if os.waitstatus_to_exitcode(status) == 3 and failure is None:
                with os.fdopen(os.dup(reader), "rb") as said:
                    message, tb = json.loads(said.readline())
                failure = (message, tb)
                forward(signal.SIGTERM, None)
        return failure
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.close(reader)


class ServiceApp:
    """The ASGI application around the handler: a Nuclio context per worker process, an event per request."""

    def __init__(self, handler: Any, init: Any, spec: RunSpec, ctx: RunnerContext) -> None:
        self.handler = handler
        self.init = init
        self.spec = spec
        self.ctx = ctx
        self.context: Any = None
        self.ready = False
        self.init_failure: tuple[str, str] | None = None
        self.takes_project = _takes(handler, "project")

    # -- start: the init function, once per worker -------------------------------------------------
    def _start(self) -> None:
        import nuclio_sdk

        logger = nuclio_sdk.Logger(logging.INFO, name=f"digitalhub.{self.spec.handler}")
        logger.set_handler("default", sys.stdout, nuclio_sdk.logger.HumanReadableFormatter())
        self.context = nuclio_sdk.Context(logger=logger, worker_id=os.getpid())
        if self.init is None:
            return
        kwargs = dict(self.spec.parameters)
        if _takes(self.init, "project"):
            kwargs["project"] = project_for(self.spec, self.ctx)
        try:
            self.init(self.context, **kwargs)
        except Exception as exc:
            init_name = (self.spec.function.get("spec") or {}).get("init_function")
            raise InitFailed(f"init function {init_name!r} raised {type(exc).__name__}: {exc}") from exc

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.to_thread(self._start)
                except InitFailed as exc:
                    self.init_failure = (str(exc), traceback.format_exc())
                    print(self.init_failure[1], flush=True)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- requests ----------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == SERVICE_READY_PATH:
            await _respond(send, 200 if self.ready else 503, b"ready" if self.ready else b"starting", "text/plain")
            return
        event = self._event(scope, body)
        try:
            output = self._call(event)  # one event at a time per worker, as Nuclio's python runtime
            if inspect.isawaitable(output):  # an async handler
                output = await output
        except Exception as exc:
            print(f"handler {self.spec.handler!r} raised:\n{self._user_traceback(exc)}", flush=True)
            await _respond(send, 500, f"{type(exc).__name__}: {exc}".encode(), "text/plain")
            return
        await self._send_output(send, output)

    def _user_traceback(self, exc: BaseException) -> str:
        """The traceback from the handler's own frame on (the server's frames say nothing to its author)."""
        try:
            source = inspect.getsourcefile(self.handler)
        except TypeError:
            source = None
        tb = exc.__traceback__
        while tb is not None and source is not None and tb.tb_frame.f_code.co_filename != source:
            tb = tb.tb_next
        return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))

    def _call(self, event: Any) -> Any:
        if self.takes_project:
            return self.handler(self.context, event, project=project_for(self.spec, self.ctx))
        return self.handler(self.context, event)

    def _event(self, scope: dict[str, Any], body: bytes) -> Any:
        import nuclio_sdk

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        query = scope.get("query_string", b"").decode("latin-1")
        lowered = {k.lower(): v for k, v in headers.items()}
        return nuclio_sdk.Event(
            body=body,
            content_type=lowered.get("content-type", ""),
            headers=headers,
            fields=dict(parse_qsl(query, keep_blank_values=True)),
            method=scope.get("method", "GET"),
            path=scope.get("path", "/"),
            size=len(body),
            url=scope.get("path", "/") + (f"?{query}" if query else ""),
        )

    async def _send_output(self, send: Any, output: Any) -> None:
        import base64

        import nuclio_sdk

        response = nuclio_sdk.Response.from_entrypoint_output(json.dumps, output)
        body = response["body"]
        if response.get("body_encoding") == "base64":
            raw = base64.b64decode(body)
        elif isinstance(body, str):
            raw = body.encode()
        else:  # a number, None: as JSON
            raw, response["content_type"] = json.dumps(body).encode(), "application/json"
        headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
        await _respond(send, int(response["status_code"]), raw, response["content_type"], headers)


def _takes(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


async def _respond(
    send: Any, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    raw = [(b"content-type", content_type.encode("latin-1")), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
            if k.lower() not in ("content-type", "content-length")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
