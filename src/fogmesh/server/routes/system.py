"""Health, metrics, system status and join tokens."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from fogmesh.errors import StoreError
from fogmesh.security.tokens import create_join_token
from fogmesh.server._json import StrictJsonRoute
from fogmesh.server._openapi import AUTHENTICATED, END, Number, errors
from fogmesh.server.auth import AdminTicket, ReadTicket
from fogmesh.server.config import STORE_RETRY_AFTER_S
from fogmesh.server.metrics import render

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["system"], route_class=StrictJsonRoute)


HEALTH_STORE_TIMEOUT_S = 2.0
HEALTH_PROBE_KEY = "healthz_probe"


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    store: Literal["ok", "failing"]
    tasks: int | None = Field(default=None, description="tasks stored (when the store answers)")
    reason: str | None = None


@router.get(
    "/healthz",
    response_model=HealthOut,
    response_model_exclude_none=True,
    responses={503: {"model": HealthOut, "description": "the store is failing (degraded)"}},
)
async def healthz(request: Request) -> Any:
    """Health: ``200 {"status": "ok", "store": "ok", "tasks": n}`` while the store answers a
    read and a write; ``503 {"status": "degraded", "store": "failing", "reason"}`` with
    ``Retry-After`` while either fails or takes over 2 s (a full disk fails only writes)."""
    service = request.app.state.service
    store = service.coordinator.store
    try:
        async with asyncio.timeout(HEALTH_STORE_TIMEOUT_S):
            counts = await store.count_by_state()
            await store.set_value(HEALTH_PROBE_KEY, service.clock.time())
    except (StoreError, TimeoutError) as exc:
        detail = "no answer in time" if isinstance(exc, TimeoutError) else exc.reason
        log.warning("health check: the store is failing: %s", detail)
        return JSONResponse(
            {"status": "degraded", "store": "failing", "reason": "the store is not answering"},
            status_code=503,
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )
    return {"status": "ok", "store": "ok", "tasks": sum(counts.values())}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format (counts only; no ids, no payloads)."""
    service = request.app.state.service
    return PlainTextResponse(
        render(service.metrics, service.status()),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


@router.get("/v1/status", responses=AUTHENTICATED)
async def status(request: Request, _: ReadTicket) -> dict[str, Any]:
    """Tasks by state, queue by priority, devices by status and power mode, clusters."""
    result: dict[str, Any] = request.app.state.service.status()
    return result


# What a join token's URL must look like, said once for the schema and the check: scheme, a
# host name or address, an optional port, then a path, query or nothing; no whitespace anywhere
# (said separately, so a final newline is refused too).
JOIN_URL_PATTERN = r"^(https?|wss?)://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?([/?#]|" + END + ")"
_URL_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "maxLength": 2000,
            "pattern": JOIN_URL_PATTERN,
            "not": {"pattern": r"\s"},
        },
        {"type": "null"},
    ],
    "description": "URL devices dial: http(s)/ws(s)://host[:port][/path] (default: the "
    "coordinator's own)",
}


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    ttl: Number = Field(default=3600.0, gt=0, le=30 * 86_400, description="seconds")
    url: Annotated[str | None, WithJsonSchema(_URL_SCHEMA)] = None

    @field_validator("url")
    @classmethod
    def _dialable(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if len(url) > 2000 or re.search(JOIN_URL_PATTERN, url) is None:
            raise ValueError("must be http(s)/ws(s)://host[:port][/path]")
        if re.search(r"\s", url):
            raise ValueError("must not contain whitespace")
        return url


@router.post("/v1/tokens", status_code=201, responses={**AUTHENTICATED, **errors(413)})
async def create_token(
    request: Request, _: AdminTicket, body: TokenIn | None = None
) -> dict[str, Any]:
    """A one-use join token for a new device (``fogmesh agent --join TOKEN``).

    Without ``url`` the token carries the coordinator's ``--url``, else the address and port it
    listens on; a coordinator listening on every interface (0.0.0.0) without ``--url`` cannot
    tell which address devices dial, and answers 422 naming ``url``."""
    service = request.app.state.service
    spec = body or TokenIn()
    url = spec.url or service.join_url()
    join, ticket = create_join_token(
        service.keys,
        url=url,
        ttl=spec.ttl,
        clock=service.clock,
        tls_fingerprint=service.pinned_fingerprint,
    )
    await asyncio.to_thread(service.record_token, ticket, url)
    return {"token": join.encode(), "id": ticket.ticket_id, "expires_at": ticket.expires_at}


class TokenOut(BaseModel):
    id: str = Field(description="the token's ticket id (not the token: it grants nothing)")
    state: Literal["unused", "used", "revoked", "expired"]
    created_at: float
    expires_at: float
    revoked_at: float | None
    scopes: list[str]
    url: str


class TokenList(BaseModel):
    tokens: list[TokenOut]


@router.get("/v1/tokens", response_model=TokenList, responses=AUTHENTICATED)
async def list_tokens(
    request: Request,
    _: AdminTicket,
    include_expired: Annotated[bool, Query(alias="all", description="also expired tokens")] = False,
) -> dict[str, Any]:
    """Join tokens issued with this coordinator's keys (``fogmesh token create`` and ``POST
    /v1/tokens``), oldest first: unused, used (a device enrolled with it), revoked, expired."""
    tokens = await request.app.state.service.list_tokens(include_expired=include_expired)
    return {"tokens": tokens}


@router.delete(
    "/v1/tokens/{token_id}",
    response_model=TokenOut,
    responses={**AUTHENTICATED, **errors(404, 409)},
)
async def revoke_token(
    token_id: Annotated[str, Path(min_length=1, max_length=128)],
    request: Request,
    _: AdminTicket,
) -> dict[str, Any]:
    """Revoke an unused join token: enrolment refuses it from now on, across restarts.
    Revoking a revoked or expired token answers it as it is."""
    result: dict[str, Any] = await request.app.state.service.revoke_token(token_id)
    return result
