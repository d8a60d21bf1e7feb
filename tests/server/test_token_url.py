"""The URL a join token carries when ``POST /v1/tokens`` names none: where the coordinator
really listens (never port 0, never the wildcard address devices cannot dial)."""

from __future__ import annotations

from pathlib import Path

import httpx

from fogmesh.security.tokens import JoinToken
from fogmesh.server import CoordinatorService, ServerConfig, create_app


async def _token_url(config: ServerConfig, body: dict[str, object]) -> httpx.Response:
    service = CoordinatorService(config)
    await service.start()
    try:
        service.write_runtime(f"http://{config.host}:45678", port=45678)  # as run_coordinator
        app = create_app(config, service=service)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fog"
        ) as client:
            auth = {"Authorization": f"Bearer {service.admin_ticket}"}
            return await client.post("/v1/tokens", json=body, headers=auth)
    finally:
        await service.stop()


async def test_a_token_carries_the_port_the_coordinator_bound(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path / "c", db_url="memory", port=0)
    r = await _token_url(config, {"ttl": 60})
    assert r.status_code == 201, r.text
    assert JoinToken.parse(r.json()["token"]).coordinator_url == "http://127.0.0.1:45678"


async def test_on_every_interface_the_caller_must_name_the_address(tmp_path: Path) -> None:
    config = ServerConfig(
        data_dir=tmp_path / "c", db_url="memory", host="0.0.0.0", insecure_http=True
    )
    r = await _token_url(config, {"ttl": 60})
    assert r.status_code == 422 and "every interface" in r.json()["error"]["reason"]
    r = await _token_url(config, {"ttl": 60, "url": "http://192.168.1.20:8700"})
    assert r.status_code == 201
    assert JoinToken.parse(r.json()["token"]).coordinator_url == "http://192.168.1.20:8700"
