"""The FastAPI app: DigitalHub Core's routes, their errors, the API level and the body limit.

Routes are plain functions over :class:`~digitalhub_provider.api.service.Service`
(run in FastAPI's thread pool: the stores are synchronous). Bodies are read as
JSON by hand so that malformed JSON is a 400 naming the problem, as DigitalHub
Core answers, rather than FastAPI's 422.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitalhub_provider.api.auth import Credentials
from digitalhub_provider.api.errors import ApiError, bad_request
from digitalhub_provider.api.execution import Executor
from digitalhub_provider.api.service import DEFAULT_PAGE_SIZE, MAX_PREVIEW_ROWS, PREVIEW_ROWS, Service
from digitalhub_provider.api.wire import Envelope, entity_type_of
from digitalhub_provider.errors import (
    DigitalHubError,
    EntityError,
    IllegalTransitionError,
    StateChangedError,
    StoreError,
)
from digitalhub_provider.sdk.context import Context, get_context

log = logging.getLogger(__name__)

API_LEVEL = "15"  # DigitalHub Core's API level the official SDK 0.15 expects
MAX_BODY = 16 * 1024 * 1024
ENTITY_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}},
    }
}


class ApiLevelAndLimit:
    """``X-Api-Level`` on every response, and 413 for a request body over ``limit`` bytes (by its
    Content-Length, or as it streams in). Plain ASGI: Starlette's ``BaseHTTPMiddleware`` costs about
    a millisecond a request."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_level(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-api-level", API_LEVEL.encode())]}
            await send(message)

        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(send_with_level)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send_with_level)
        except _TooLarge:
            await self._refuse(send_with_level)

    async def _refuse(self, send: Send) -> None:
        error = ApiError(413, f"the request body is over {self.limit} bytes")
        await JSONResponse(error.body(), status_code=413)({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class Json(JSONResponse):
    """Entities are JSON already: rendered as they are, compactly."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"malformed JSON body: {exc}") from None


def _status_for(exc: DigitalHubError) -> int:
    if isinstance(exc, StateChangedError):
        return 409
    if isinstance(exc, (EntityError, IllegalTransitionError)):
        return 400
    if isinstance(exc, StoreError):
        return 503
    return 500


Authenticate = Callable[[Request], Awaitable[None]]


def credentials_check(credentials: Credentials) -> Authenticate:
    """The standalone server's check: the configured token or user and password (or none on loopback)."""

    async def check(request: Request) -> None:
        credentials.check(request.headers.get("authorization"))

    return check


def create_app(
    credentials: Credentials | None = None,
    context: Callable[[], Context] = get_context,
    max_body: int = MAX_BODY,
    authenticate: Authenticate | None = None,
    executor: Executor | None = None,
) -> FastAPI:
    """The app; ``context`` gives the stores of each request (the process's by default);
    ``authenticate`` (raising a 401 :class:`ApiError`) replaces the check of ``credentials``;
    ``executor`` runs what clients submit for remote execution (none: such runs end ERROR)."""
    check = authenticate or credentials_check(credentials or Credentials())

    # Dependencies are coroutines (they do not block): a plain function would cost a thread hop each.
    async def authorized(request: Request) -> None:
        await check(request)

    async def service() -> Service:
        return Service(context(), executor)

    app = FastAPI(
        default_response_class=Json,
        title="DigitalHub Core API (airflow-provider-digitalhub)",
        description="DigitalHub Core's REST surface over this platform's stores, for the official SDK and clients.",
    )
    envelope = Envelope.model_json_schema(ref_template="#/components/schemas/{model}")

    api = APIRouter(dependencies=[Depends(authorized)])
    _routes(api, service)
    app.include_router(api)

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        schema = original_openapi()
        schema.setdefault("components", {}).setdefault("schemas", {})["Envelope"] = envelope
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=_auth_header(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0])
        error = bad_request(f"invalid {err['loc'][0]} parameter {field!r}: {err['msg']}")
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(DigitalHubError)
    async def platform_error(request: Request, exc: DigitalHubError) -> JSONResponse:
        status = _status_for(exc)
        if status >= 500:
            log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        error = ApiError(status, str(exc))
        return JSONResponse(error.body(), status_code=status)

    app.add_middleware(ApiLevelAndLimit, limit=max_body)
    return app


def _auth_header(exc: ApiError) -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer, Basic realm="digitalhub"'} if exc.status == 401 else {}


def _routes(api: APIRouter, service: Callable[[], Awaitable[Service]]) -> None:
    """Each route returns its :class:`Json` itself: FastAPI would otherwise walk every entity through
    its ``jsonable_encoder`` (about 2 ms for a page of runs)."""
    svc = Depends(service)
    body = Depends(json_body)

    @api.get("/api/auth", tags=["auth"])
    def auth() -> Json:
        """The SDK calls this before every S3 access: 2xx means the credentials are good."""
        return Json({"authenticated": True})

    @api.get("/.well-known/configuration", tags=["auth"])
    def configuration() -> Json:
        return Json({"k8s_resource_profiles": []})

    # -- projects -------------------------------------------------------------------------
    @api.get("/api/v1/projects", tags=["projects"])
    def list_projects(page: int = Query(0, ge=0), size: int = Query(DEFAULT_PAGE_SIZE, ge=1), s: Service = svc) -> Json:
        return Json(s.list_projects(page, size))

    @api.post("/api/v1/projects", tags=["projects"], openapi_extra=ENTITY_BODY)
    def create_project(data: Any = body, s: Service = svc) -> Json:
        return Json(s.create_project(data))

    @api.get("/api/v1/projects/{name}", tags=["projects"])
    def get_project(name: str, s: Service = svc) -> Json:
        return Json(s.get_project(name))

    @api.put("/api/v1/projects/{name}", tags=["projects"], openapi_extra=ENTITY_BODY)
    def update_project(name: str, data: Any = body, s: Service = svc) -> Json:
        return Json(s.update_project(name, data))

    @api.delete("/api/v1/projects/{name}", tags=["projects"])
    def delete_project(name: str, cascade: bool = False, s: Service = svc) -> Json:
        s.delete_project(name, cascade)
        return Json(True)

    # -- entities of a project --------------------------------------------------------------
    @api.get("/api/v1/-/{project}/{plural}", tags=["entities"])
    def list_entities(
        request: Request,
        project: str,
        plural: str,
        page: int = Query(0, ge=0),
        size: int = Query(DEFAULT_PAGE_SIZE, ge=1),
        s: Service = svc,
    ) -> Json:
        """Newest first; the latest version of each name unless ``versions=all``; filters: name, kind,
        state, function, workflow (exact matches), labels (repeated: entities carrying every one)."""
        filters: dict[str, Any] = {k: v for k, v in request.query_params.items() if k not in ("page", "size", "sort")}
        if len(states := request.query_params.getlist("state")) > 1:
            filters["state"] = states  # any of them (an extension: DigitalHub Core's SDK sends one)
        if "labels" in filters:
            filters["labels"] = request.query_params.getlist("labels")  # all of them
        return Json(s.page(project, entity_type_of(plural), filters, page, size))

    @api.post("/api/v1/-/{project}/{plural}", tags=["entities"], openapi_extra=ENTITY_BODY)
    def create_entity(project: str, plural: str, data: Any = body, s: Service = svc) -> Json:
        return Json(s.create(project, entity_type_of(plural), data))

    @api.delete("/api/v1/-/{project}/{plural}", tags=["entities"])
    def delete_by_name(project: str, plural: str, name: str, cascade: bool = False, s: Service = svc) -> Json:
        """Every version of ``name``; ``cascade`` takes a function's tasks and runs with it."""
        s.delete_by_name(project, entity_type_of(plural), name, cascade)
        return Json(True)

    # -- the data of dataitems, artifacts and models ------------------------------------------
    @api.get("/api/v1/-/{project}/dataitems/{entity_id}/preview", tags=["data"])
    def preview_dataitem(
        project: str,
        entity_id: str,
        rows: int = Query(PREVIEW_ROWS, ge=1, le=MAX_PREVIEW_ROWS),
        s: Service = svc,
    ) -> Json:
        """This server's extension: the schema and first ``rows`` rows of a dataitem of kind table (Parquet
        or CSV), with ``total_rows`` from the dataitem's status when it records them."""
        return Json(s.preview(project, entity_id, rows))

    @api.get("/api/v1/-/{project}/{plural}/{entity_id}/files/download", tags=["data"])
    def download_file(project: str, plural: str, entity_id: str, s: Service = svc) -> FileResponse:
        """DigitalHub Core's route answers a presigned URL; this server streams the file itself (a single
        file; a folder is a 400), read from its data store or from the http(s) source the entity names."""
        found = s.file(project, entity_type_of(plural), entity_id)
        cleanup = BackgroundTask(found.cleanup.cleanup) if found.cleanup is not None else None
        return FileResponse(
            found.path,
            media_type="application/octet-stream",
            filename=found.filename,
            content_disposition_type="attachment",
            background=cleanup,
        )

    @api.get("/api/v1/-/{project}/{plural}/{entity_id}", tags=["entities"])
    def get_entity(project: str, plural: str, entity_id: str, s: Service = svc) -> Json:
        return Json(s.get(project, entity_type_of(plural), entity_id))

    @api.put("/api/v1/-/{project}/{plural}/{entity_id}", tags=["entities"], openapi_extra=ENTITY_BODY)
    def update_entity(project: str, plural: str, entity_id: str, data: Any = body, s: Service = svc) -> Json:
        return Json(s.update(project, entity_type_of(plural), entity_id, data))

    @api.delete("/api/v1/-/{project}/{plural}/{entity_id}", tags=["entities"])
    def delete_entity(project: str, plural: str, entity_id: str, cascade: bool = False, s: Service = svc) -> Json:
        s.delete(project, entity_type_of(plural), entity_id, cascade)
        return Json(True)

    # -- runs ---------------------------------------------------------------------------------
    @api.get("/api/v1/-/{project}/runs/{run_id}/logs", tags=["runs"])
    def run_logs(project: str, run_id: str, s: Service = svc) -> Json:
        return Json(s.logs(project, run_id))

    @api.post("/api/v1/-/{project}/runs/{run_id}/stop", tags=["runs"])
    def stop_run(project: str, run_id: str, s: Service = svc) -> Json:
        return Json(s.stop(project, run_id))

    @api.post("/api/v1/-/{project}/runs/{run_id}/resume", tags=["runs"])
    def resume_run(project: str, run_id: str, s: Service = svc) -> Json:
        return Json(s.resume(project, run_id))
