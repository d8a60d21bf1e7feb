"""Helpers shared by the server tests."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from fogmesh.server import CoordinatorService


@dataclass
class Api:
    service: CoordinatorService
    client: httpx.AsyncClient
    admin: dict[str, str]

    def ticket(self, *scopes: str, ttl: float = 600.0, subject: str = "tester") -> str:
        return self.service.issuer.issue(
            subject=subject, audience=self.service.keys.audience, scopes=scopes, ttl=ttl
        )

    def bearer(self, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ticket(*scopes)}"}
