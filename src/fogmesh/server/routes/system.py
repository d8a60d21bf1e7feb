"""Health, metrics, system status and join tokens."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from fogmesh.security.tokens import create_join_token
from fogmesh.server.auth import AdminTicket, ReadTicket
from fogmesh.server.metrics import render

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """Liveness: the service is up and its store answers."""
    service = request.app.state.service
    counts = await service.coordinator.store.count_by_state()
    return {"status": "ok", "tasks": sum(counts.values())}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format (counts only; no ids, no payloads)."""
    service = request.app.state.service
    return PlainTextResponse(
        render(service.metrics, service.status()),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


@router.get("/v1/status")
async def status(request: Request, _: ReadTicket) -> dict[str, Any]:
    """Tasks by state, queue by priority, devices by status and power mode, clusters."""
    result: dict[str, Any] = request.app.state.service.status()
    return result


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    ttl: float = Field(default=3600.0, gt=0, le=30 * 86_400, description="seconds")
    url: str | None = Field(default=None, max_length=2000, description="URL devices dial")


@router.post("/v1/tokens", status_code=201)
async def create_token(
    request: Request, _: AdminTicket, body: TokenIn | None = None
) -> dict[str, Any]:
    """A one-use join token for a new device (``fogmesh agent --join TOKEN``)."""
    service = request.app.state.service
    spec = body or TokenIn()
    url = spec.url or service.config.url
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


_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no ticket, or one that does not verify"},
    403: {"description": "the ticket lacks the admin scope"},
    422: {"description": "invalid request"},
}


@router.get("/v1/tokens", response_model=TokenList, responses=_ADMIN_ERRORS)
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
    responses={
        **_ADMIN_ERRORS,
        404: {"description": "no such token was issued here"},
        409: {"description": "the token was already used to enrol a device"},
    },
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
