"""Bearer-ticket checks for the REST API, and the admin ticket the CLI finds in the data dir."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from fogmesh.errors import TicketError
from fogmesh.security.keyfile import read_private_file, write_private_file
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
    """Write the admin ticket 0600, atomically (the key files' rule: ``security.keyfile``)."""
    path = Path(data_dir) / ADMIN_TICKET_FILE
    write_private_file(path, ticket.encode("ascii") + b"\n")
    return path


def read_admin_ticket(data_dir: Path) -> str | None:
    """The saved admin ticket, None if there is none; KeyFileError if group/other may read it
    (whoever can read a ticket can use it: the file is refused, as a key file would be)."""
    path = Path(data_dir) / ADMIN_TICKET_FILE
    try:
        return read_private_file(path, what="ticket file").decode("ascii").strip() or None
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
