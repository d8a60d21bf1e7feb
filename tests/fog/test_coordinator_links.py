"""The coordinator never burns work on a device that cannot take it (issue 14 §1).

A closed agent link, the coordinator's own outage and a store that cannot take a result for a
moment: none of them costs a task an attempt. Rounds are driven by hand under a ManualClock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_coordinator import LIFECYCLE, desktop, submit

from fogmesh.clock import ManualClock
from fogmesh.errors import StaleAttempt, StoreError
from fogmesh.fog.coordinator import CoordinatorConfig, FogCoordinator
from fogmesh.fog.lifecycle import LifecycleConfig
from fogmesh.fog.tasks import Task
from fogmesh.store import DeviceStatus, MemoryStore

# heartbeat 10 s × 3 missed: lost after 30 s; a closed link's leases wait 4 s
CFG = CoordinatorConfig(
    lifecycle=LifecycleConfig(
        heartbeat_interval=LIFECYCLE.heartbeat_interval,
        missed_heartbeats=LIFECYCLE.missed_heartbeats,
        dispatch_timeout=LIFECYCLE.dispatch_timeout,
        timeout_multiplier=LIFECYCLE.timeout_multiplier,
        timeout_grace=LIFECYCLE.timeout_grace,
        reconnect_grace=4.0,
    )
)


class FlakyStore(MemoryStore):
    """A store whose next ``fail_writes`` result writes fail, as a full disk's would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_writes = 0

    async def complete(self, *args: Any, **kwargs: Any) -> Task:
        if self.fail_writes:
            self.fail_writes -= 1
            raise StoreError("database write failed: database or disk is full")
        return await super().complete(*args, **kwargs)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture
async def store() -> AsyncIterator[FlakyStore]:
    store = FlakyStore()
    yield store
    await store.close()


@pytest.fixture
async def fog(store: FlakyStore, clock: ManualClock) -> AsyncIterator[FogCoordinator]:
    async with FogCoordinator(store, CFG, clock=clock, run_loop=False) as coordinator:
        yield coordinator


def _outcomes(task: Task) -> list[str | None]:
    return [h.outcome for h in task.history]


async def test_a_closed_link_takes_the_device_out_at_once(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    await fog.register_node(desktop("b"))
    await fog.link_closed("a")
    assert [n.device_id for n in fog.nodes()] == ["b"]
    ids = [await submit(fog, max_attempts=1) for _ in range(6)]
    await fog.schedule_once()
    assert {fog.get_task_status(i)["device"] for i in ids} == {"b"}
    # back: placeable again
    clock.advance(1.0)
    await fog.update_node_state("a", desktop("a"))
    assert [n.device_id for n in fog.nodes()] == ["a", "b"]


async def test_leases_of_a_closed_link_are_requeued_after_the_grace_uncharged(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog, max_attempts=1)
    await fog.schedule_once()
    await fog.report_started(task_id, "a", 1)
    await fog.register_node(desktop("b"))
    await fog.link_closed("a")
    clock.advance(3.9)
    await fog.schedule_once()
    assert fog.get_task_status(task_id)["device"] == "a"  # it may still come back with it
    clock.advance(0.1)
    await fog.schedule_once()  # grace over: requeued, not charged, and placed on b
    status = fog.get_task_status(task_id)
    assert (status["state"], status["device"], status["attempt"]) == ("scheduled", "b", 2)
    await fog.report_result(task_id, "b", 2, "ok")
    task = await fog.get_task(task_id)
    assert task.state.value == "completed" and _outcomes(task) == ["disconnected", "completed"]
    with pytest.raises(StaleAttempt):  # a's late result is fenced off
        await fog.report_result(task_id, "a", 1, "late")


async def test_a_link_that_comes_back_within_the_grace_keeps_its_leases(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog)
    await fog.schedule_once()
    await fog.link_closed("a")
    clock.advance(2.0)
    await fog.update_node_state("a", desktop("a"))  # the agent reconnected
    clock.advance(10.0)
    await fog.schedule_once()
    await fog.report_result(task_id, "a", 1, "ok")
    assert _outcomes(await fog.get_task(task_id)) == ["completed"]


async def test_a_closed_link_past_the_heartbeat_window_is_still_not_charged(
    store: FlakyStore, clock: ManualClock
) -> None:
    # reconnect grace longer than the liveness window: the device is found lost first
    cfg = CoordinatorConfig(lifecycle=LifecycleConfig(heartbeat_interval=1.0, reconnect_grace=60))
    async with FogCoordinator(store, cfg, clock=clock, run_loop=False) as fog:
        await fog.register_node(desktop("a"))
        task_id = await submit(fog, max_attempts=1)
        await fog.schedule_once()
        await fog.link_closed("a")
        clock.advance(3.5)
        await fog.schedule_once()
        task = await fog.get_task(task_id)
        assert task.state.value == "pending" and _outcomes(task) == ["disconnected"]
        assert (await fog.get_device("a")).status is DeviceStatus.LOST


async def test_a_restart_after_a_long_outage_marks_nobody_lost_and_charges_nothing(
    store: FlakyStore, clock: ManualClock
) -> None:
    async with FogCoordinator(store, CFG, clock=clock, run_loop=False) as fog:
        await fog.register_node(desktop("a"), labels={"site": "a"})
        await fog.register_node(desktop("b"), labels={"site": "b"})
        on_a = await submit(fog, max_attempts=1, constraints={"site": "a"})
        on_b = await submit(fog, max_attempts=1, constraints={"site": "b"})
        await fog.schedule_once()
        await fog.report_started(on_a, "a", 1)
    clock.advance(600.0)  # the coordinator is down for ten minutes, twenty heartbeat windows
    async with FogCoordinator(store, CFG, clock=clock, run_loop=False) as fog:
        await fog.schedule_once()
        devices = {d.device_id: d.status for d in await fog.list_devices()}
        assert devices == {"a": DeviceStatus.READY, "b": DeviceStatus.READY}
        assert fog.nodes() == []  # neither heard from since the restart: no new work
        clock.advance(5.0)
        await fog.update_node_state("a", desktop("a"))  # a reconnects, b never does
        assert [n.device_id for n in fog.nodes()] == ["a"]
        await fog.report_result(on_a, "a", 1, "done during the outage")
        clock.advance(25.1)  # a whole liveness window since the restart
        await fog.update_node_state("a", desktop("a"))
        await fog.schedule_once()
        assert (await fog.get_device("b")).status is DeviceStatus.LOST
        task_b = await fog.get_task(on_b)
        # b's lease is lost, not charged: the task waits for another try (max_attempts=1)
        assert task_b.state.value == "pending" and _outcomes(task_b) == ["coordinator_restart"]
        assert _outcomes(await fog.get_task(on_a)) == ["completed"]


async def test_a_result_the_store_could_not_write_keeps_its_lease_until_sent_again(
    fog: FogCoordinator, store: FlakyStore, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog, max_attempts=1)
    await fog.schedule_once()
    await fog.report_started(task_id, "a", 1)
    store.fail_writes = 100  # the disk stays full for a while; the agent keeps trying
    for _ in range(100):
        with pytest.raises(StoreError):
            await fog.report_result(task_id, "a", 1, "ok")
        clock.advance(10.0)  # 1,000 s in all: far past the lease (10 s × 2 + 5 s)
        await fog.update_node_state("a", desktop("a"))
        await fog.schedule_once()
        assert fog.get_task_status(task_id)["state"] == "running"
    task = await fog.report_result(task_id, "a", 1, "ok")
    assert task.state.value == "completed" and task.attempt == 1
    assert _outcomes(task) == ["completed"]


async def test_a_result_never_sent_again_does_not_hold_its_lease_for_ever(
    fog: FogCoordinator, store: FlakyStore, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog, max_attempts=2)
    await fog.schedule_once()
    await fog.report_started(task_id, "a", 1)
    store.fail_writes = 1
    with pytest.raises(StoreError):  # an agent too old to send it again drops it
        await fog.report_result(task_id, "a", 1, "ok")
    clock.advance(29.0)
    await fog.update_node_state("a", desktop("a"))
    await fog.schedule_once()
    assert fog.get_task_status(task_id)["state"] == "running"
    clock.advance(1.0)  # a liveness window (30 s) without a try: the lease times out
    await fog.update_node_state("a", desktop("a"))
    await fog.schedule_once()
    status = fog.get_task_status(task_id)
    assert status["attempt"] == 2 and status["state"] in ("pending", "scheduled")


async def test_the_window_after_a_restart_counts_from_when_devices_can_connect(
    store: FlakyStore, clock: ManualClock
) -> None:
    async with FogCoordinator(store, CFG, clock=clock, run_loop=False) as fog:
        await fog.register_node(desktop("a"))
    clock.advance(600.0)
    async with FogCoordinator(store, CFG, clock=clock, run_loop=False) as fog:
        clock.advance(20.0)  # a slow start: loading, then the endpoint begins to listen
        fog.devices_can_connect()
        clock.advance(29.0)
        await fog.schedule_once()
        assert (await fog.get_device("a")).status is DeviceStatus.READY
        clock.advance(2.6)  # (liveness is judged every quarter heartbeat interval)
        await fog.schedule_once()
        assert (await fog.get_device("a")).status is DeviceStatus.LOST


async def test_a_device_the_operator_removes_costs_its_tasks_no_attempt(
    fog: FogCoordinator,
) -> None:
    # `fogmesh device rm`: the operator's decision, not the task's fault.
    await fog.register_node(desktop("a"))
    task_id = await submit(fog, max_attempts=1)
    await fog.schedule_once()
    assert fog.get_task_status(task_id)["device"] == "a"
    await fog.remove_node("a")
    task = await fog.get_task(task_id)
    assert task.state.value == "pending" and _outcomes(task) == ["removed"]
