"""The REST API inside Airflow's api-server: an Airflow plugin mounting it at ``/digitalhub``.

Airflow loads plugins (the ``airflow.plugins`` entry point) in every one of its processes,
tasks included, so this module imports nothing but Airflow's plugin base: the app is
built on its first request. Every route asks for Airflow's own authentication: the JWT
that Airflow's ``POST /auth/token`` hands out, sent as ``Authorization: Bearer ...`` (the
official SDK sends ``DHCORE_ACCESS_TOKEN`` so), or the Airflow UI's session cookie. The
stores are those of the ``digitalhub_default`` connection (the embedded default without it).
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

                self._app = create_app(context=_ConnectionContext(), authenticate=airflow_user, executor=InAirflow())
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class DigitalHubPlugin(AirflowPlugin):
    name = "digitalhub"
    fastapi_apps: list[Any] = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "DigitalHub Core API"}]
