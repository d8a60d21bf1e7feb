"""The agent daemon against a real coordinator service on 127.0.0.1 (runner faked)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from daemon_helpers import FakeRunner, eventually, join_token, running_coordinator

from fogmesh.agent.daemon import AgentConfig, AgentDaemon
from fogmesh.agent.link import LinkRefused
from fogmesh.devices.emulated import EmulatedSensors, preset
from fogmesh.fog.tasks import AttemptRecord, TaskState
from fogmesh.security.noise import NoiseKeypair
from fogmesh.security.tokens import JoinToken
from fogmesh.server import CoordinatorService

PAYLOAD = {"type": "python", "function": "fogmesh.agent.workloads:echo"}


@contextlib.asynccontextmanager
async def agent(
    data_dir: Path,
    token: str | None,
    runner: FakeRunner | None = None,
    sensors: EmulatedSensors | None = None,
    backoff: float = 0.05,
    rng: random.Random | None = None,
) -> AsyncIterator[tuple[AgentDaemon, asyncio.Task[None]]]:
    daemon = AgentDaemon(
        AgentConfig(
            data_dir=data_dir,
            join_token=token,
            heartbeat=0.3,
            backoff_initial=backoff,
            reading_max_age=0.0,  # every decision reads the sensors (the default reuses 0.25 s)
        ),
        runner or FakeRunner(),
        sensors=sensors or EmulatedSensors(preset("desktop")),
        rng=rng,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        yield daemon, task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task


async def test_enrol_run_tasks_and_reconnect_with_saved_identity(tmp_path: Path) -> None:
    async with running_coordinator(tmp_path / "coord") as service:
        token = join_token(service)
        async with agent(tmp_path / "a1", token) as (daemon, _):
            await eventually(lambda: daemon.device_id in service.hub.sessions)
            ids = [
                await service.coordinator.submit_task(
                    "inference",
                    cpu_cores=1,
                    estimated_duration=5,
                    payload={**PAYLOAD, "args": {"n": i}},
                )
                for i in range(5)
            ]
            for i, task_id in enumerate(ids):
                done = await service.coordinator.wait_for(task_id, timeout=10)
                assert done.state is TaskState.COMPLETED
                assert done.result == {"echo": {"n": i}}
                assert done.assigned_device == daemon.device_id and done.attempt == 1
            device_id = daemon.device_id
        ticket = tmp_path / "a1" / "agent" / "agent.ticket"
        assert stat.S_IMODE(os.stat(ticket).st_mode) == 0o600
        # Without a token: the saved identity and agent ticket.
        async with agent(tmp_path / "a1", None) as (daemon, _):
            await eventually(lambda: device_id in service.hub.sessions)
            assert daemon.device_id == device_id
        # The join token was one-shot: another device cannot reuse it.
        async with agent(tmp_path / "a2", token) as (_, task):
            with pytest.raises(LinkRefused, match="already been used"):
                await asyncio.wait_for(task, 10)
        assert service.metrics.enrolments == 1


async def test_wrong_coordinator_key_fails_handshake_clearly(tmp_path: Path) -> None:
    async with running_coordinator(tmp_path / "coord") as service:
        good = JoinToken.parse(join_token(service))
        wrong = JoinToken(good.coordinator_url, NoiseKeypair.generate().public, good.ticket)
        async with agent(tmp_path / "a", wrong.encode()) as (_, task):
            with pytest.raises(LinkRefused, match="does not hold the key"):
                await asyncio.wait_for(task, 10)
        assert not service.hub.sessions
        assert service.metrics.enrolments == 0


async def test_agent_refuses_work_its_policy_forbids(tmp_path: Path) -> None:
    sensors = EmulatedSensors(preset("phone-charging"))
    async with running_coordinator(tmp_path / "coord") as service:
        token = join_token(service)
        async with agent(tmp_path / "a", token, sensors=sensors) as (daemon, _):
            await eventually(lambda: daemon.device_id in service.hub.sessions)
            # Unplugged at 5 %: the coordinator has not heard yet, the device knows now.
            sensors.update(charging=False, battery_percent=5.0)
            task_id = await service.coordinator.submit_task(
                "inference", cpu_cores=1, estimated_duration=5, payload=PAYLOAD
            )
            await eventually(
                lambda: any(h.outcome == "refused" for h in _history(service, task_id))
            )
            refused = next(h for h in _history(service, task_id) if h.outcome == "refused")
            assert "battery" in (refused.reason or "")


def _history(service: CoordinatorService, task_id: str) -> tuple:  # type: ignore[type-arg]
    status = service.coordinator.explain(task_id)

    return tuple(msgspec.convert(h, AttemptRecord) for h in status["history"])


class _LongestWait(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b  # jitter at its maximum: the agent stays offline for the whole backoff


async def test_results_survive_a_coordinator_outage(tmp_path: Path) -> None:
    hold = asyncio.Event()
    runner = FakeRunner(hold)
    async with running_coordinator(tmp_path / "coord") as service:
        token = join_token(service)
        async with agent(tmp_path / "a", token, runner=runner, backoff=2.0, rng=_LongestWait()) as (
            daemon,
            _,
        ):
            await eventually(lambda: daemon.device_id in service.hub.sessions)
            task_id = await service.coordinator.submit_task(
                "inference", cpu_cores=1, estimated_duration=30, payload=PAYLOAD
            )
            await eventually(lambda: bool(runner.runs))
            # Drop the link while the task runs; it finishes offline and reports on return.
            session = service.hub.sessions[daemon.device_id]
            await session.websocket.close(1012, "test: restart")
            await eventually(lambda: daemon.disconnects == 1)
            hold.set()
            await eventually(lambda: bool(daemon._outbox))
            assert not daemon.connected.is_set()  # the outcome waits for the link
            done = await service.coordinator.wait_for(task_id, timeout=10)
            assert done.state is TaskState.COMPLETED and done.attempt == 1
            assert len(runner.runs) == 1 and daemon.sessions == 2
            await eventually(lambda: not daemon._outbox)


async def test_cancel_reaches_the_running_task(tmp_path: Path) -> None:
    runner = FakeRunner(asyncio.Event())
    async with running_coordinator(tmp_path / "coord") as service:
        token = join_token(service)
        async with agent(tmp_path / "a", token, runner=runner) as (daemon, _):
            await eventually(lambda: daemon.device_id in service.hub.sessions)
            task_id = await service.coordinator.submit_task(
                "inference", cpu_cores=1, estimated_duration=30, payload=PAYLOAD
            )
            await eventually(
                lambda: service.coordinator.get_task_status(task_id)["state"] == "running"
            )
            before = await service.coordinator.get_task(task_id)
            await service.coordinator.cancel_task(task_id)
            service.hub.cancel(before)
            await eventually(lambda: runner.cancelled == [task_id])


async def test_stop_lets_running_work_finish_and_report(tmp_path: Path) -> None:
    hold = asyncio.Event()
    runner = FakeRunner(hold)
    async with running_coordinator(tmp_path / "coord") as service:
        token = join_token(service)
        daemon = AgentDaemon(
            AgentConfig(data_dir=tmp_path / "a", join_token=token, heartbeat=0.3, stop_grace=10),
            runner,
            sensors=EmulatedSensors(preset("desktop")),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        await eventually(lambda: daemon.device_id in service.hub.sessions)
        task_id = await service.coordinator.submit_task(
            "inference", cpu_cores=1, estimated_duration=30, payload=PAYLOAD
        )
        await eventually(lambda: bool(runner.runs))
        stop.set()
        await eventually(lambda: daemon._stopping)
        hold.set()  # the task finishes during the grace period
        await asyncio.wait_for(running, 10)
        done = await service.coordinator.get_task(task_id)
        assert done.state is TaskState.COMPLETED and done.attempt == 1
        # It said goodbye: offline at once, not after missed heartbeats.
        record = await service.coordinator.get_device(daemon.device_id)
        assert record.status.value == "offline"
