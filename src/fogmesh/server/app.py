"""``create_app(config)``: the FastAPI application (REST, agent WebSocket, metrics, OpenAPI).

Errors are values: every ``FogmeshError`` becomes ``{"error": {"code", "reason"}}`` with a 4xx
status chosen by its type; bad input never reaches a 500.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fogmesh._version import __version__
from fogmesh.errors import (
    ConfigError,
    FogmeshError,
    IdempotencyConflict,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    ReplayError,
    StaleAttempt,
    StoreError,
    TicketError,
    TicketScopeError,
    TokenError,
)
from fogmesh.server.config import STORE_RETRY_AFTER_S, ServerConfig
from fogmesh.server.routes import devices, edge, knowledge, system, tasks
from fogmesh.server.service import CoordinatorService

__all__ = ["create_app", "http_status"]

log = logging.getLogger(__name__)

STORE_UNAVAILABLE = "the coordinator's store is not answering; nothing was changed, retry later"


def http_status(exc: FogmeshError) -> int:
    if isinstance(exc, StoreError):
        return 503
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, TicketScopeError):
        return 403
    if isinstance(exc, TicketError | ReplayError):
        return 401
    if isinstance(exc, StaleAttempt | IllegalTransition | IdempotencyConflict):
        return 409
    if isinstance(exc, InvalidRequest | ConfigError | TokenError):
        return 422
    return 400


def _error(
    status: int, code: str, reason: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(
        {"error": {"code": code, "reason": reason, **extra}}, status_code=status, headers=headers
    )


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # An HTTPException passes FastAPI's body parsing untouched (anything else
                    # would be turned into a 400 there).
                    raise HTTPException(413, f"request body exceeds {self.limit} bytes")
            return message

        await self.app(scope, limited, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(413, "too_large", f"request body exceeds {self.limit} bytes")
        await response(scope, receive, send)


def _allowed_methods(routes: list[APIRoute], path: str) -> list[str]:
    # A literal path (/v1/tasks/batch) is its own resource even where a template
    # (/v1/tasks/{task_id}) would match it too.
    exact = [r for r in routes if "{" not in r.path and r.path == path]
    methods: set[str] = set()
    for route in exact or [r for r in routes if r.path_regex.match(path)]:
        methods |= route.methods or set()
    return sorted(methods)


def create_app(config: ServerConfig, *, service: CoordinatorService | None = None) -> FastAPI:
    """The app for ``config``. With ``service`` given the caller owns its lifecycle; otherwise
    the app's lifespan starts and stops one."""
    owned = service is None
    svc = service if service is not None else CoordinatorService(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owned:
            await svc.start()
        try:
            yield
        finally:
            if owned:
                await svc.stop()

    app = FastAPI(
        title="fogmesh coordinator",
        version=__version__,
        description="Places prioritised AI tasks on phones, laptops and Pis by battery and "
        "thermal state. Authenticate with `Authorization: Bearer <ticket>`; the admin ticket "
        "is in the data directory (`admin.ticket`).",
        lifespan=lifespan,
    )
    app.state.service = svc

    @app.exception_handler(FogmeshError)
    async def fogmesh_error(request: Request, exc: FogmeshError) -> JSONResponse:
        if isinstance(exc, StoreError):
            # The store's own words (SQL, driver messages) are for the operator's log only.
            log.warning("%s %s: store failed: %s", request.method, request.url.path, exc.reason)
            return _error(
                503,
                "store_unavailable",
                STORE_UNAVAILABLE,
                headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
            )
        return _error(http_status(exc), exc.code, exc.reason)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # RFC 9110: a 405 lists every method the path allows. Starlette's lists only the
            # first route matching the path, and GET and POST /v1/tasks are two routes.
            headers = {"Allow": ", ".join(_allowed_methods(api_routes, request.url.path))}
        return _error(
            exc.status_code, code.get(exc.status_code, "http_error"), str(exc.detail), headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:5]:
            if err.get("type") == "json_invalid":  # the decoder's own words say what is wrong
                problems.append(f"body: {(err.get('ctx') or {}).get('error', 'not JSON')}")
                continue
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(422, "invalid_request", "; ".join(problems) or "invalid request")

    routers = (system.router, tasks.router, devices.router, knowledge.router, edge.router)
    api_routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    app.include_router(system.router)
    app.include_router(tasks.router)
    app.include_router(devices.router)
    app.include_router(knowledge.router)
    app.include_router(edge.router)

    @app.websocket("/v1/agent")
    async def agent(websocket: WebSocket) -> None:
        await svc.hub.handle(websocket)

    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    return app
