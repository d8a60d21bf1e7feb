from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from server_helpers import Api

from fogmesh.fog.coordinator import CoordinatorConfig
from fogmesh.server import CoordinatorService, ServerConfig, create_app


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = ServerConfig(
        data_dir=tmp_path / "coord",
        db_url="memory",
        coordinator=CoordinatorConfig(scheduling_interval=0.2),
        max_body_bytes=64 * 1024,
    )
    service = CoordinatorService(config)
    await service.start()
    app = create_app(config, service=service)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://fog") as client:
            yield Api(service, client, {"Authorization": f"Bearer {service.admin_ticket}"})
    finally:
        await service.stop()
