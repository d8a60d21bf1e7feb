"""Bearer-ticket checks for the REST API, and the admin ticket the CLI finds in the data dir."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from fogmesh.errors import TicketError
from fogmesh.security.tickets import Ticket, TicketVerifier
from fogmesh.server.config import ADMIN_TICKET_FILE

__all__ = [
    "AdminTicket",
    "AgentTicket",
    "ReadTicket",
    "SubmitTicket",
    "read_admin_ticket",
    "require",
    "write_admin_ticket",
]


def write_admin_ticket(data_dir: Path, ticket: str) -> Path:
    """Write the admin ticket 0600 (created private, never widened afterwards)."""
    path = Path(data_dir) / ADMIN_TICKET_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, ticket.encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def read_admin_ticket(data_dir: Path) -> str | None:
    path = Path(data_dir) / ADMIN_TICKET_FILE
    try:
        return path.read_text(encoding="ascii").strip() or None
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise TicketError("missing bearer ticket (Authorization: Bearer <ticket>)")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TicketError("Authorization header must be 'Bearer <ticket>'")
    return value.strip()


def require(scope: str) -> Callable[[Request], Awaitable[Ticket]]:
    """A FastAPI dependency: the request's ticket, verified for ``scope`` (else TicketError)."""

    async def check(request: Request) -> Ticket:
        service = request.app.state.service
        verifier: TicketVerifier = service.verifier
        ticket = verifier.verify(_bearer(request), audience=service.keys.audience, scope=scope)
        if ticket.one_shot:
            # Its id must be durably spent before the request is served, or a restart would
            # let the ticket in again. Other tickets never touch the store here.
            await service.seen.persist()
        return ticket

    check.__name__ = f"require_{scope}"
    return check


AdminTicket = Annotated[Ticket, Depends(require("admin"))]
SubmitTicket = Annotated[Ticket, Depends(require("submit"))]
ReadTicket = Annotated[Ticket, Depends(require("read"))]
AgentTicket = Annotated[Ticket, Depends(require("agent"))]
