"""Property-based requests from the OpenAPI schema: no input may produce a 5xx.

The coordinator runs in uvicorn on a thread (its own event loop); schemathesis calls it over HTTP
with the admin ticket, so generated bodies get past authentication and reach validation.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from fogmesh.fog.coordinator import CoordinatorConfig
from fogmesh.server import CoordinatorService, ServerConfig, create_app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    config = ServerConfig(
        data_dir=data_dir,
        db_url="memory",
        port=0,
        max_body_bytes=64 * 1024,
        coordinator=CoordinatorConfig(scheduling_interval=1.0),
    )
    service = CoordinatorService(config)
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        await service.start()
        server = _Server(
            uvicorn.Config(
                create_app(config, service=service), port=0, log_level="warning", lifespan="off"
            )
        )
        box["server"] = server
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started and not serving.done():  # noqa: ASYNC110 - a flag only
                await asyncio.sleep(0.01)
            box["port"] = server.servers[0].sockets[0].getsockname()[1]
            ready.set()
            await serving
        finally:
            await service.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30), "coordinator did not start"
    try:
        yield f"http://127.0.0.1:{box['port']}", service.admin_ticket
    finally:
        box["server"].should_exit = True
        thread.join(30)


def test_no_input_causes_a_server_error(live: tuple[str, str]) -> None:
    url, admin = live
    api = schemathesis.openapi.from_url(f"{url}/openapi.json")
    headers = {"Authorization": f"Bearer {admin}"}
    calls: dict[str, int] = {}
    for result in api.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]

        @given(case=st.one_of(*(operation.as_strategy(generation_mode=m) for m in modes)))
        @settings(
            max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            response = case.call(base_url=url, headers=headers)
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
            assert response.status_code < 500, (case.method, case.path, response.text[:500])

        check()
    assert len(calls) >= 11, calls  # every documented operation was exercised
