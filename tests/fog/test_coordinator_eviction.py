"""A device unplugged while busy: once its battery reaches the floor's margin, the coordinator
takes its work back (not charged), tells the device to stop, and places it elsewhere."""

from __future__ import annotations

from typing import Any

from test_coordinator import desktop, phone

from fogmesh.clock import ManualClock
from fogmesh.fog.coordinator import CoordinatorConfig, FogCoordinator
from fogmesh.store import MemoryStore


async def test_work_on_a_battery_at_the_floor_margin_is_taken_back() -> None:
    stopped: list[tuple[Any, ...]] = []
    fog = FogCoordinator(
        MemoryStore(),
        CoordinatorConfig(),
        clock=ManualClock(start=1_800_000_000.0),
        run_loop=False,
        stopper=lambda *args: stopped.append(args),
    )
    await fog.start()
    try:
        await fog.register_node(phone("p", 60.0, charging=True))
        task_id = await fog.submit_task("inference", cpu_cores=1, estimated_duration=30)
        await fog.schedule_once()
        assert fog.get_task_status(task_id)["device"] == "p"
        await fog.report_started(task_id, "p", 1)
        await fog.update_node_state("p", phone("p", 30.0, charging=False))  # unplugged: fine
        assert fog.get_task_status(task_id)["state"] == "running"
        await fog.update_node_state("p", phone("p", 21.0, charging=False))  # at floor + 1 %
        status = fog.get_task_status(task_id)
        assert status["state"] == "pending"
        assert stopped == [("p", task_id, 1, stopped[0][3])] and "floor" in stopped[0][3]
        stored = await fog.get_task(task_id)
        assert stored.history[-1].outcome == "preempted"  # not the task's fault: not charged
        await fog.register_node(desktop("d"))
        await fog.schedule_once()
        assert fog.get_task_status(task_id)["device"] == "d"
        assert fog.get_system_status()["scheduler"]["evictions"] == 1
    finally:
        await fog.close()
