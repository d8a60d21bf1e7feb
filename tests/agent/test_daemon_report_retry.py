"""A result the coordinator cannot store now is kept by the agent and sent again (issue 14 §1).

A real coordinator service on 127.0.0.1 whose store fails the result write (as a full disk or a
restarting PostgreSQL would), and the agent daemon with a fake runner: the coordinator answers
``store_unavailable`` with ``retry_after`` instead of refusing, the agent keeps the result in its
outbox and sends it again, also across a reconnect, and the task is stored once, not re-run.
The last test fills a real (tmpfs) disk under the coordinator's artefacts, when run as root.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import FakeRunner, eventually, join_token, running_coordinator
from test_agent_artefacts import BIG, BigRunner

from fogmesh.agent.daemon import AgentConfig, AgentDaemon
from fogmesh.devices.emulated import EmulatedSensors, preset
from fogmesh.errors import StoreError
from fogmesh.fog.tasks import Task, TaskState
from fogmesh.server import CoordinatorService

PAYLOAD = {"type": "python", "function": "fogmesh.agent.workloads:echo"}


@contextlib.asynccontextmanager
async def agent(data_dir: Path, token: str, runner: FakeRunner) -> AsyncIterator[AgentDaemon]:
    daemon = AgentDaemon(
        AgentConfig(data_dir=data_dir, join_token=token, heartbeat=0.3, backoff_initial=0.05),
        runner,
        sensors=EmulatedSensors(preset("desktop")),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        yield daemon
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task


class FailingWrites:
    """Makes the service's store fail every result write while ``failing`` is set."""

    def __init__(self, service: CoordinatorService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.failing = True
        self.failed = 0
        store = service.coordinator.store
        complete = store.complete

        async def failing_complete(*args: Any, **kwargs: Any) -> Task:
            if self.failing:
                self.failed += 1
                raise StoreError("database write failed: database or disk is full")
            return await complete(*args, **kwargs)

        monkeypatch.setattr(store, "complete", failing_complete)


async def _submit(service: CoordinatorService) -> str:
    return await service.coordinator.submit_task(
        "inference", cpu_cores=1, estimated_duration=30, payload={**PAYLOAD, "args": {"n": 1}}
    )


async def test_a_result_the_store_refused_once_is_sent_again_and_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = FakeRunner()
    async with running_coordinator(tmp_path / "coord") as service:
        writes = FailingWrites(service, monkeypatch)
        async with agent(tmp_path / "a", join_token(service), runner) as daemon:
            await eventually(lambda: daemon.device_id in service.hub.sessions)
            task_id = await _submit(service)
            await eventually(lambda: writes.failed >= 1)
            writes.failing = False  # the disk has room again
            done = await service.coordinator.wait_for(task_id, timeout=10)
            assert done.state is TaskState.COMPLETED and done.result == {"echo": {"n": 1}}
            assert done.attempt == 1 and [h.outcome for h in done.history] == ["completed"]
            assert len(runner.runs) == 1  # not re-run
            await eventually(lambda: not daemon._outbox)
            assert service.metrics.reports_deferred == 1
            assert service.metrics.results["completed"] == 1  # counted once, when stored


async def test_a_result_waiting_to_be_stored_survives_a_reconnect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = FakeRunner()
    async with running_coordinator(tmp_path / "coord") as service:
        writes = FailingWrites(service, monkeypatch)
        async with agent(tmp_path / "a", join_token(service), runner) as daemon:
            await eventually(lambda: daemon.device_id in service.hub.sessions)
            task_id = await _submit(service)
            await eventually(lambda: writes.failed >= 1)
            # The link drops while the result waits: the agent keeps it across the reconnect.
            await service.hub.sessions[daemon.device_id].websocket.close(1012, "test: drop")
            await eventually(lambda: daemon.disconnects == 1)
            assert daemon._outbox
            writes.failing = False
            done = await service.coordinator.wait_for(task_id, timeout=10)
            assert done.state is TaskState.COMPLETED and done.attempt == 1
            assert len(runner.runs) == 1 and daemon.sessions >= 2


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Callable[[str], None]]:
    """A tmpfs of ``size`` mounted at ``where`` (root only), and a way to resize it."""
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")

    def resize(new: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={new}", str(where)], check=True)

    try:
        yield resize
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_a_big_result_the_full_disk_cannot_take_is_uploaded_again(tmp_path: Path) -> None:
    # The coordinator keeps big results as files: a 1 MiB disk cannot take a 3 MiB one.
    with small_disk(tmp_path / "coord" / "artefacts", "1m") as resize:
        async with running_coordinator(tmp_path / "coord") as service:
            runner = BigRunner()
            async with agent(tmp_path / "a", join_token(service), runner) as daemon:
                await eventually(lambda: daemon.device_id in service.hub.sessions)
                task_id = await service.coordinator.submit_task(
                    "inference", cpu_cores=0.5, estimated_duration=5, max_attempts=1,
                    payload={"type": "python", "function": "fogmesh.agent.workloads:blob"},
                )  # fmt: skip
                await eventually(lambda: service.metrics.reports_deferred >= 1)
                # still leased (a result that was not stored also did not record the start)
                state = service.coordinator.get_task_status(task_id)["state"]
                assert state in ("scheduled", "running")
                resize("16m")  # room again
                done = await service.coordinator.wait_for(task_id, timeout=20)
                assert done.state is TaskState.COMPLETED and done.attempt == 1, done.error
                assert service.artefacts is not None
                assert service.artefacts.path(task_id).read_bytes() == BIG
                assert daemon.disconnects == 0  # the full disk never cost the session
