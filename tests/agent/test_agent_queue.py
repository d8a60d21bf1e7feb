"""Short tasks leased beyond the device's concurrent-task limit wait in the agent's queue and
run one slot at a time; a queued task whose turn comes after the policy turned is refused."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from daemon_helpers import FakeRunner, eventually, join_token, running_coordinator

from fogmesh.agent.daemon import AgentConfig, AgentDaemon
from fogmesh.agent.runner import PREFETCH, RunLimits, RunOutcome
from fogmesh.devices.emulated import EmulatedSensors, preset
from fogmesh.fog.tasks import Task, TaskState

PAYLOAD = {"type": "python", "function": "fogmesh.agent.workloads:echo"}


def one_core_desktop() -> EmulatedSensors:
    """One core, so the policy allows exactly one task at a time."""
    p = preset("desktop")
    return EmulatedSensors(
        p.replace(capabilities=dataclasses.replace(p.capabilities, cpu_cores_logical=1))
    )


class GatedRunner(FakeRunner):
    """Holds every task until released one by one; like the real runner it runs at most the
    ``running_cap`` it is given at once (the rest wait, as in a worker's queue). Records how
    many ran at once and how many were handed to it at once."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.most = 0
        self.handed = 0
        self.most_handed = 0
        self.caps: list[int | None] = []
        self.gate = asyncio.Semaphore(0)
        self.slots: asyncio.Semaphore | None = None

    async def run(
        self,
        task: Task,
        limits: RunLimits,
        *,
        on_start: Callable[[], None] | None = None,
        running_cap: int | None = None,
    ) -> RunOutcome:
        self.caps.append(running_cap)
        if self.slots is None:
            self.slots = asyncio.Semaphore(running_cap or 1)
        self.handed += 1
        self.most_handed = max(self.most_handed, self.handed)
        try:
            async with self.slots:
                self.active += 1
                self.most = max(self.most, self.active)
                try:
                    await self.gate.acquire()
                    return await super().run(task, limits, on_start=on_start)
                finally:
                    self.active -= 1
        finally:
            self.handed -= 1


@contextlib.asynccontextmanager
async def one_slot_agent(
    data_dir: Path, token: str, runner: FakeRunner, sensors: EmulatedSensors, **config: Any
) -> AsyncIterator[AgentDaemon]:
    daemon = AgentDaemon(
        AgentConfig(
            data_dir=data_dir, join_token=token, heartbeat=0.3, reading_max_age=0.0, **config
        ),
        runner,
        sensors=sensors,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        yield daemon
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task


async def _submit_short(service: object, n: int) -> list[str]:
    return [
        await service.coordinator.submit_task(  # type: ignore[attr-defined]
            "validation", cpu_cores=0.1, memory_mb=16, estimated_duration=0.5, payload=PAYLOAD
        )
        for _ in range(n)
    ]


async def test_short_tasks_queue_at_the_agent_and_run_within_its_slots(tmp_path: Path) -> None:
    sensors = one_core_desktop()
    runner = GatedRunner()
    async with (
        running_coordinator(tmp_path / "coord") as service,
        one_slot_agent(tmp_path / "a", join_token(service), runner, sensors) as daemon,
    ):
        await eventually(lambda: daemon.device_id in service.hub.sessions)
        ids = await _submit_short(service, 4)
        # one slot, four queue places: every task is leased to the device at once
        await eventually(
            lambda: all(service.coordinator.get_task_status(i)["state"] != "pending" for i in ids)
        )
        for _ in ids:
            runner.gate.release()
        for task_id in ids:
            done = await service.coordinator.wait_for(task_id, timeout=10)
            assert done.state is TaskState.COMPLETED and done.attempt == 1
        assert runner.most == 1  # never more than the policy's one slot at once
        assert set(runner.caps) == {1}  # … which the agent tells its runner
        # Tasks that run in milliseconds may wait in a worker's queue, one per slot.
        assert runner.most_handed <= 1 + PREFETCH


async def test_a_queued_task_is_refused_when_its_turn_comes_too_late(tmp_path: Path) -> None:
    sensors = one_core_desktop()
    runner = GatedRunner()
    async with (
        running_coordinator(tmp_path / "coord") as service,
        one_slot_agent(tmp_path / "a", join_token(service), runner, sensors) as daemon,
    ):
        await eventually(lambda: daemon.device_id in service.hub.sessions)
        first, second = await _submit_short(service, 2)
        await eventually(
            lambda: service.coordinator.get_task_status(second)["state"] == "scheduled"
        )
        sensors.update(cpu_temp_c=90.0)  # overheated while the second one waited
        runner.gate.release()
        assert (await service.coordinator.wait_for(first, timeout=10)).state is (
            TaskState.COMPLETED
        )
        await eventually(
            lambda: any(
                h["outcome"] == "refused" for h in service.coordinator.explain(second)["history"]
            )
        )


async def test_a_freed_slot_wakes_one_waiting_task_not_all(tmp_path: Path) -> None:
    sensors = one_core_desktop()
    runner = GatedRunner()
    async with (
        running_coordinator(tmp_path / "coord") as service,
        # (no worker queues: with them every queued tiny task fits at once)
        one_slot_agent(
            tmp_path / "a", join_token(service), runner, sensors, prefetch_below_s=0.0
        ) as daemon,
    ):
        await eventually(lambda: daemon.device_id in service.hub.sessions)
        checks = 0
        recent_read = daemon._recent_read

        async def counted() -> object:
            nonlocal checks
            checks += 1
            return await recent_read()

        daemon._recent_read = counted  # type: ignore[method-assign]
        ids = await _submit_short(service, 4)
        await eventually(
            lambda: all(service.coordinator.get_task_status(i)["state"] != "pending" for i in ids)
        )
        for _ in ids:
            runner.gate.release()
        for task_id in ids:
            assert (await service.coordinator.wait_for(task_id, timeout=10)).state is (
                TaskState.COMPLETED
            )
        # A check as each task arrives, and one more as each of the three that waited gets its
        # turn: 4 + 3. (Waking every waiting task at every freed slot made it 4 + 3 + 2 + 1.)
        assert checks <= 2 * len(ids) - 1
