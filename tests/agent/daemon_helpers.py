"""An in-process coordinator on 127.0.0.1 and a fake runner, for the daemon tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from fogmesh.agent.runner import RunLimits, RunOutcome
from fogmesh.devices.model import Accepts
from fogmesh.fog.coordinator import CoordinatorConfig
from fogmesh.fog.lifecycle import LifecycleConfig
from fogmesh.fog.tasks import PythonPayload, Task
from fogmesh.security.tokens import create_join_token
from fogmesh.server import CoordinatorService, ServerConfig, create_app


class FakeRunner:
    """Implements the runner interface: 'completes' python tasks by echoing their args."""

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.hold = hold
        self.runs: list[tuple[str, int, RunLimits]] = []
        self.cancelled: list[str] = []
        self.started = False
        self._cancel: dict[str, asyncio.Event] = {}
        self.accepted: Accepts | None = None

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False

    async def run(
        self,
        task: Task,
        limits: RunLimits,
        *,
        on_start: Callable[[], None] | None = None,
        running_cap: int | None = None,
    ) -> RunOutcome:
        self.runs.append((task.id, task.attempt, limits))
        if on_start is not None:
            on_start()
        if self.hold is not None:
            cancel = self._cancel[task.id] = asyncio.Event()
            held = asyncio.create_task(self.hold.wait())
            stopped = asyncio.create_task(cancel.wait())
            await asyncio.wait({held, stopped}, return_when=asyncio.FIRST_COMPLETED)
            held.cancel()
            stopped.cancel()
            if cancel.is_set():
                return RunOutcome(status="cancelled", error={"code": "cancelled", "reason": "x"})
        args = task.payload.args if isinstance(task.payload, PythonPayload) else None
        return RunOutcome(status="completed", result={"echo": args}, wall_s=0.001)

    async def cancel(self, task_id: str) -> bool:
        self.cancelled.append(task_id)
        event = self._cancel.get(task_id)
        if event is not None:
            event.set()
        return event is not None

    def capabilities(self) -> dict[str, Any]:
        return {"python": ["fake"]}

    def accepts(self) -> Accepts | None:
        return self.accepted  # None: says nothing, as agents before ``accepts`` did


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def running_coordinator(
    data_dir: Path, *, heartbeat: float = 30.0, db_url: str | None = "memory"
) -> AsyncIterator[CoordinatorService]:
    """A coordinator service on a free port; ``db_url=None``: SQLite in ``data_dir``."""
    config = ServerConfig(
        data_dir=data_dir,
        db_url=db_url,
        port=0,
        coordinator=CoordinatorConfig(
            scheduling_interval=0.2,
            lifecycle=LifecycleConfig(heartbeat_interval=heartbeat, dispatch_timeout=5.0),
        ),
    )
    service = CoordinatorService(config)
    await service.start()
    server = _QuietServer(
        uvicorn.Config(
            create_app(config, service=service), port=0, log_level="warning", lifespan="off"
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers only a flag
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        object.__setattr__(config, "public_url", f"http://127.0.0.1:{port}")
        yield service
    finally:
        server.should_exit = True
        await service.hub.close_all()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await service.stop()


def join_token(service: CoordinatorService, ttl: float = 600.0) -> str:
    join, _ = create_join_token(service.keys, url=service.config.url, ttl=ttl, clock=service.clock)
    return join.encode()


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``check`` until true or the deadline passes (then fail)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polling a condition with a deadline
            await asyncio.sleep(0.02)
