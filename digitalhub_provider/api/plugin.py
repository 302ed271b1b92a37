"""The REST API inside Airflow's api-server: an Airflow plugin mounting it at ``/digitalhub``.

Airflow loads plugins (the ``airflow.plugins`` entry point) in every one of its processes,
tasks included, so this module imports nothing but Airflow's plugin base: the app is
built on its first request. Every route asks for Airflow's own authentication: the JWT
that Airflow's ``POST /auth/token`` hands out, sent as ``Authorization: Bearer ...`` (the
official SDK sends ``DHCORE_ACCESS_TOKEN`` so), or the Airflow UI's session cookie. The
stores are those of the ``digitalhub_default`` connection (the embedded default without it).

The same app serves the console (static HTML, JavaScript and CSS bundled in
``digitalhub_provider/console/static``) at ``/digitalhub/console/``: it holds no data and
asks no authentication itself; its pages read and write through the API above, with the
Airflow UI's cookie. Airflow shows it in its navigation (``external_views``, an iframe at
``/plugin/digitalhub``) and as a task instance's tab (the run of that task).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from airflow.sdk.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.types import Receive, Scope, Send

    from digitalhub_provider.sdk.context import Context

URL_PREFIX = "/digitalhub"
CONSOLE_PATH = "/console"
CONSOLE_URL = f"{URL_PREFIX}{CONSOLE_PATH}/"
CONTEXT_TTL = 60.0  # seconds a connection's stores are reused before the connection is read again


async def airflow_user(request: Request) -> None:
    """401 unless the request carries a token Airflow's auth manager accepts."""
    from airflow.api_fastapi.app import get_auth_manager

    from digitalhub_provider.api.errors import ApiError

    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        token = request.cookies.get("_token", "")
    if not token:
        raise ApiError(401, "authentication required: an Airflow token (POST /auth/token) as a bearer token")
    try:
        await get_auth_manager().get_user_from_token(token.strip())
    except Exception:  # expired, badly signed, revoked: Airflow's own reasons, not ours to tell apart
        raise ApiError(401, "invalid or expired Airflow token") from None


class _ConnectionContext:
    """The ``digitalhub_default`` connection's stores, read again after :data:`CONTEXT_TTL` seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ctx: Context | None = None
        self._at = 0.0

    def __call__(self) -> Context:
        with self._lock:
            if self._ctx is None or time.monotonic() - self._at > CONTEXT_TTL:
                from digitalhub_provider.hooks.digitalhub import DigitalHubHook

                self._ctx = DigitalHubHook().get_context()
                self._at = time.monotonic()
            return self._ctx


class LazyApp:
    """An ASGI app that builds the REST API on its first request (not when Airflow imports plugins)."""

    def __init__(self) -> None:
        self._app: FastAPI | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> FastAPI:
        with self._lock:
            if self._app is None:
                from digitalhub_provider.api.app import create_app
                from digitalhub_provider.api.execution import InAirflow

                app = create_app(context=_ConnectionContext(), authenticate=airflow_user, executor=InAirflow())
                mount_console(app)
                self._app = app
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def mount_console(app: FastAPI) -> None:
    """The console's static files at :data:`CONSOLE_PATH` of ``app`` (``index.html`` for the folder)."""
    from pathlib import Path

    from starlette.staticfiles import StaticFiles

    import digitalhub_provider.console

    folder = Path(digitalhub_provider.console.__file__).parent / "static"
    app.mount(CONSOLE_PATH, StaticFiles(directory=folder, html=True), name="console")


class DigitalHubPlugin(AirflowPlugin):
    name = "digitalhub"
    fastapi_apps: list[Any] = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "DigitalHub Core API"}]
    # Airflow's UI shows each view in an iframe at /plugin/<url_route>; a task instance's tab gets
    # its href with {DAG_ID}, {RUN_ID}, {TASK_ID} and {MAP_INDEX} filled in.
    external_views: list[Any] = [
        {
            "name": "DigitalHub",
            "href": CONSOLE_URL,
            "destination": "nav",
            "url_route": "digitalhub",
            "nav_top_level": True,
        },
        {
            "name": "DigitalHub run",
            "href": f"{CONSOLE_URL}#/ti/{{DAG_ID}}/{{RUN_ID}}/{{TASK_ID}}/{{MAP_INDEX}}",
            "destination": "task_instance",
            "url_route": "digitalhub-run",
        },
    ]
