"""The global knowledge store: devices offer anonymised, noised counts; k-anonymous items publish.

A device's twin posts a ``Contribution`` with its agent ticket. The coordinator re-checks what it
cannot trust a device to have done (consent flag, anonymised topic, a DP mechanism and ε), and
counts contributors by the ticket's subject, not by a pseudonym the device chose, so one device
cannot pose as k. Only items that k distinct devices offered are ever returned.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from fogmesh.server._json import StrictJsonRoute
from fogmesh.server._openapi import AUTHENTICATED, Bool, Number, errors
from fogmesh.server.auth import AgentTicket, ReadTicket
from fogmesh.twin.elevation import Contribution

__all__ = ["KNOWLEDGE_KEY", "router"]

KNOWLEDGE_KEY = "global_knowledge"

router = APIRouter(tags=["knowledge"], route_class=StrictJsonRoute, responses=AUTHENTICATED)


class ContributionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    topic: str = Field(min_length=1, max_length=200)
    noisy_count: Number = Field(ge=-1e9, le=1e9)
    epsilon: Number = Field(gt=0, le=10)
    mechanism: Literal["laplace", "gaussian"]
    consent: Bool


@router.post("/v1/knowledge", status_code=202, responses=errors(400, 413))
async def contribute(request: Request, body: ContributionIn, ticket: AgentTicket) -> dict[str, Any]:
    """Offer one anonymised, differentially private count to the global store."""
    service = request.app.state.service
    contributor = hashlib.sha256(f"fogmesh-contributor:{ticket.subject}".encode()).hexdigest()[:16]
    store = service.knowledge
    store.accept(
        Contribution(
            topic=body.topic,
            noisy_count=body.noisy_count,
            epsilon=body.epsilon,
            mechanism=body.mechanism,
            contributor=contributor,
            consent=body.consent,
        )
    )
    await service.coordinator.store.set_value(KNOWLEDGE_KEY, store.to_state())
    return {"accepted": True, "pending": store.pending()}


@router.get("/v1/knowledge")
async def published(request: Request, _: ReadTicket) -> dict[str, Any]:
    """Items at least k distinct devices offered, with their summed noisy counts."""
    store = request.app.state.service.knowledge
    return {"k": store.k, "items": store.published(), "pending": store.pending()}
