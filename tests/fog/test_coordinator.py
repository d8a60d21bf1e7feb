"""FogCoordinator: the seed API over the store, scheduler, lifecycle rules and clusters.

Rounds are driven by hand (``run_loop=False`` + ``schedule_once``) under a ``ManualClock``, so
every test is deterministic and nothing waits on wall time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fogmesh.clock import ManualClock
from fogmesh.devices import preset
from fogmesh.devices.model import DeviceCapabilities, DeviceProfile, DeviceType, NetworkType
from fogmesh.errors import (
    DeviceNotFound,
    FogmeshError,
    IllegalTransition,
    InvalidRequest,
    StaleAttempt,
    TaskNotFound,
)
from fogmesh.fog.coordinator import CoordinatorConfig, FogCoordinator
from fogmesh.fog.lifecycle import LifecycleConfig
from fogmesh.fog.tasks import MAX_PAYLOAD_BYTES, TaskPriority, TaskState, TaskType
from fogmesh.store import DeviceRecord, DeviceStatus, MemoryStore, open_store

LIFECYCLE = LifecycleConfig(
    heartbeat_interval=10.0,
    missed_heartbeats=3,
    dispatch_timeout=20.0,
    timeout_multiplier=2.0,
    timeout_grace=5.0,
)


def desktop(device_id: str, *, cores: int = 8, ram_mb: int = 16384, **live: Any) -> DeviceProfile:
    caps = DeviceCapabilities(
        cpu_cores_logical=cores,
        cpu_cores_physical=cores,
        ram_total_mb=ram_mb,
        has_battery=False,
        has_gpu=False,
        supported_transports=("betanet",),
    )
    live.setdefault("cpu_temp_c", 40.0)
    live.setdefault("network_type", NetworkType.ETHERNET)
    live.setdefault("ram_available_mb", ram_mb // 2)
    return DeviceProfile(device_id, DeviceType.DESKTOP, caps, **live)


def phone(device_id: str, battery: float, *, charging: bool, temp: float = 33.0) -> DeviceProfile:
    caps = DeviceCapabilities(
        cpu_cores_logical=8,
        cpu_cores_physical=8,
        ram_total_mb=3072,
        has_battery=True,
        has_gpu=False,
        supported_transports=("betanet", "bitchat"),
    )
    return DeviceProfile(
        device_id,
        DeviceType.SMARTPHONE,
        caps,
        battery_percent=battery,
        charging=charging,
        cpu_temp_c=temp,
        network_type=NetworkType.WIFI,
        metered=False,
        ram_available_mb=1800,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture(params=["memory", "sqlite"])
async def fog(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[FogCoordinator]:
    store = MemoryStore() if request.param == "memory" else await open_store(tmp_path / "fog.db")
    coordinator = FogCoordinator(
        store, CoordinatorConfig(lifecycle=LIFECYCLE), clock=clock, run_loop=False
    )
    await coordinator.start()
    yield coordinator
    await coordinator.close()
    await store.close()


async def submit(fog: FogCoordinator, **kw: Any) -> str:
    kw.setdefault("task_type", TaskType.INFERENCE)
    kw.setdefault("cpu_cores", 1.0)
    kw.setdefault("memory_mb", 256)
    kw.setdefault("estimated_duration", 10.0)
    return await fog.submit_task(**kw)


async def test_task_waits_with_a_reason_when_there_are_no_devices(fog: FogCoordinator) -> None:
    task_id = await submit(fog)
    await fog.schedule_once()
    assert fog.get_task_status(task_id)["state"] == "pending"
    why = fog.explain(task_id)
    assert why["decision"]["kind"] == "unplaced"
    assert "no devices" in why["text"]


async def test_work_goes_to_the_mains_device_not_the_critical_phone(fog: FogCoordinator) -> None:
    await fog.register_node(phone("phone", 7, charging=False))
    await fog.register_node(desktop("desk"))
    task_id = await submit(fog)
    await fog.schedule_once()
    status = fog.get_task_status(task_id)
    assert (status["state"], status["device"], status["attempt"]) == ("scheduled", "desk", 1)
    why = fog.explain(task_id)
    assert why["decision"]["kind"] == "placed"
    assert {p["name"] for p in why["decision"]["breakdown"]} >= {"power", "thermal", "capacity"}
    assert "desk" in why["text"]


async def test_charging_phone_beats_an_unplugged_one_at_the_same_level(
    fog: FogCoordinator,
) -> None:
    await fog.register_node(phone("unplugged", 80, charging=False))
    await fog.register_node(phone("charging", 80, charging=True))
    task_id = await submit(fog)
    await fog.schedule_once()
    assert fog.get_task_status(task_id)["device"] == "charging"


async def test_lost_device_task_is_retried_elsewhere_and_completed_exactly_once(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog, estimated_duration=100.0)
    await fog.schedule_once()
    first = fog.get_task_status(task_id)
    assert (first["device"], first["attempt"]) == ("a", 1)
    await fog.report_started(task_id, "a", 1)

    # "a" falls silent; "b" joins and keeps heartbeating.
    await fog.register_node(desktop("b", cores=2))
    for _ in range(4):
        clock.advance(10.0)
        await fog.update_node_state("b", desktop("b", cores=2))
    clock.advance(1.0)
    await fog.schedule_once()
    second = fog.get_task_status(task_id)
    assert (second["state"], second["device"], second["attempt"]) == ("scheduled", "b", 2)
    assert fog.get_system_status()["devices"]["by_status"]["lost"] == 1

    # The lost device comes back late with a result: fenced off, nothing changes.
    with pytest.raises(StaleAttempt):
        await fog.report_result(task_id, "a", 1, {"answer": "late"})
    done = await fog.report_result(task_id, "b", 2, {"answer": 42})
    assert done.state is TaskState.COMPLETED
    with pytest.raises((StaleAttempt, IllegalTransition)):
        await fog.report_result(task_id, "b", 2, {"answer": "twice"})

    stored = await fog.get_task(task_id)
    assert stored.result == {"answer": 42}
    assert [(h.attempt, h.device_id, h.outcome) for h in stored.history] == [
        (1, "a", "lost"),
        (2, "b", "completed"),
    ]


async def test_lost_device_returns_to_service_cleanly(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    clock.advance(31.0)
    await fog.schedule_once()
    assert fog.get_system_status()["devices"]["by_status"]["lost"] == 1
    assert fog.nodes() == []

    await fog.update_node_state("a", desktop("a"))
    assert fog.get_system_status()["devices"]["by_status"]["ready"] == 1
    task_id = await submit(fog)
    await fog.schedule_once()
    assert fog.get_task_status(task_id)["device"] == "a"


async def test_a_fleet_going_silent_is_marked_lost_without_a_read_per_device(
    fog: FogCoordinator, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(20):
        await fog.register_node(desktop(f"d{i:02d}"), labels={"site": "home"})
    reads: list[str] = []
    get_device = fog.store.get_device

    async def counted(device_id: str) -> DeviceRecord:
        reads.append(device_id)
        return await get_device(device_id)

    monkeypatch.setattr(fog.store, "get_device", counted)
    clock.advance(31.0)
    await fog.schedule_once()
    assert reads == []
    assert fog.get_system_status()["devices"]["by_status"]["lost"] == 20
    assert fog.nodes() == []
    stored = await fog.store.list_devices()
    assert {d.status for d in stored} == {DeviceStatus.LOST}
    assert all(fog._devices[d.device_id].record == d for d in stored)  # memory = store


async def test_running_task_times_out_and_is_requeued(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog, estimated_duration=10.0)
    await fog.schedule_once()
    await fog.report_started(task_id, "a", 1)
    # timeout = 10 s × 2 + 5 s grace = 25 s after start
    clock.advance(24.0)
    await fog.update_node_state("a", desktop("a"))
    await fog.schedule_once()
    assert fog.get_task_status(task_id)["attempt"] == 1
    clock.advance(1.0)
    await fog.update_node_state("a", desktop("a"))
    await fog.schedule_once()
    status = fog.get_task_status(task_id)
    assert (status["state"], status["attempt"]) == ("scheduled", 2)
    stored = await fog.get_task(task_id)
    assert stored.history[0].outcome == "timeout"


async def test_max_attempts_fails_the_task_with_its_history(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog, max_attempts=2)
    for attempt in (1, 2):
        await fog.schedule_once()
        await fog.report_failure(task_id, "a", attempt, {"code": "crash", "reason": "boom"})
    status = fog.get_task_status(task_id)
    assert status["state"] == "failed"
    assert status["error"]["code"] == "max_attempts"
    stored = await fog.get_task(task_id)
    assert [h.outcome for h in stored.history] == ["failed", "failed"]


async def test_deadline_expiry_fails_a_pending_task(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    task_id = await submit(fog, deadline=clock.time() + 5)
    clock.advance(6.0)
    await fog.schedule_once()
    status = fog.get_task_status(task_id)
    assert (status["state"], status["error"]["code"]) == ("failed", "deadline")


async def test_cancel_then_late_report_is_refused(fog: FogCoordinator) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog)
    await fog.schedule_once()
    cancelled = await fog.cancel_task(task_id)
    assert cancelled.state is TaskState.CANCELLED
    with pytest.raises((StaleAttempt, IllegalTransition)):
        await fog.report_result(task_id, "a", 1, {"x": 1})
    with pytest.raises(IllegalTransition):
        await fog.cancel_task(task_id)
    assert fog.get_task_status(task_id)["state"] == "cancelled"


async def test_critical_task_preempts_low_work_which_is_requeued(fog: FogCoordinator) -> None:
    await fog.register_node(desktop("a", cores=2))
    low = await submit(fog, priority=TaskPriority.LOW, cpu_cores=2.0)
    await fog.schedule_once()
    await fog.report_started(low, "a", 1)
    urgent = await submit(fog, priority=TaskPriority.CRITICAL, cpu_cores=2.0)
    await fog.schedule_once()
    assert fog.get_task_status(urgent)["device"] == "a"
    low_status = fog.get_task_status(low)
    assert low_status["state"] == "pending"
    assert (await fog.get_task(low)).history[0].outcome == "preempted"


async def test_counts_match_the_store_after_a_mixed_run(fog: FogCoordinator) -> None:
    await fog.register_node(desktop("a", cores=4))
    ids = [await submit(fog) for _ in range(10)]
    await fog.schedule_once()
    placed = [i for i in ids if fog.get_task_status(i)["state"] == "scheduled"]
    await fog.report_result(placed[0], "a", 1, 1)
    await fog.report_started(placed[1], "a", 1)
    await fog.report_failure(placed[2], "a", 1, {"code": "bad", "reason": "x"}, retry=False)
    await fog.cancel_task(ids[-1])
    counts = fog.get_system_status()["tasks"]
    stored = await fog.store.count_by_state()
    assert counts == {state.value: n for state, n in stored.items()}
    assert sum(counts.values()) == 10
    assert counts["completed"] == 1 and counts["failed"] == 1 and counts["running"] == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cpu_cores": -1.0}, "cpu_cores"),
        ({"memory_mb": 0}, "memory_mb"),
        ({"task_type": "mining"}, "task_type"),
        ({"priority": 5}, "priority"),
        ({"estimated_duration": 0}, "estimated_duration"),
        ({"payload": {"type": "python", "function": "no_colon"}}, "payload"),
        (
            {
                "payload": {
                    "type": "python",
                    "function": "m:f",
                    "args": {"x": "a" * MAX_PAYLOAD_BYTES},
                }
            },
            "payload",
        ),
        ({"payload": {"type": "teleport"}}, None),
        ({"constraints": {"min_battery_percent": 140}}, "min_battery_percent"),
    ],
)
async def test_bad_submissions_are_refused_and_store_nothing(
    fog: FogCoordinator, kwargs: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(InvalidRequest) as info:
        await submit(fog, **kwargs)
    if field is not None:
        assert info.value.details.get("field") == field or field in info.value.reason
    assert sum((await fog.store.count_by_state()).values()) == 0
    assert sum(fog.get_system_status()["tasks"].values()) == 0


async def test_unknown_ids_give_clear_errors(fog: FogCoordinator) -> None:
    with pytest.raises(TaskNotFound):
        fog.get_task_status("nope")
    with pytest.raises(TaskNotFound):
        await fog.cancel_task("nope")
    with pytest.raises(TaskNotFound):
        fog.explain("nope")
    with pytest.raises(DeviceNotFound):
        await fog.remove_node("ghost")
    with pytest.raises(FogmeshError):
        await fog.report_result("nope", "ghost", 1, None)


async def test_removing_a_device_requeues_its_work(fog: FogCoordinator) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog)
    await fog.schedule_once()
    await fog.remove_node("a")
    assert fog.get_task_status(task_id)["state"] == "pending"
    assert fog.get_system_status()["devices"]["total"] == 0


async def test_fifty_devices_form_clusters_near_five_with_one_head_each(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    for i in range(50):
        await fog.register_node(desktop(f"d{i:02d}"), labels={"site": "home"})
        clock.advance(0.03)  # past the re-forming interval (0.5 ms per device)
        await fog.schedule_once()
        sizes = [len(c.members) for c in fog.clustering.clusters]
        assert sum(sizes) == i + 1
        if i + 1 >= 2:
            assert all(2 <= s <= 7 for s in sizes), sizes
    clusters = fog.get_system_status()["clusters"]
    assert 7 <= len(clusters) <= 25
    assert all(c["head"] in c["members"] for c in clusters)
    stored = await fog.store.load_clusters()
    assert {c.cluster_id for c in stored} == {c["id"] for c in clusters}


async def test_clusters_are_re_formed_at_most_once_per_interval_under_a_stream_of_joins(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    for i in range(20):
        await fog.register_node(desktop(f"d{i:02d}"), labels={"site": "home"})
    await fog.schedule_once()  # the first re-forming is at once
    assert sum(len(c.members) for c in fog.clustering.clusters) == 20
    await fog.register_node(desktop("late"), labels={"site": "home"})
    await fog.schedule_once()  # within 20 × 0.5 ms of the last one: folded into a later round
    assert sum(len(c.members) for c in fog.clustering.clusters) == 20
    clock.advance(0.011)
    await fog.schedule_once()
    assert sum(len(c.members) for c in fog.clustering.clusters) == 21


async def test_wait_for_returns_the_finished_task(fog: FogCoordinator) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog)
    await fog.schedule_once()
    with pytest.raises(TimeoutError):
        await fog.wait_for(task_id, timeout=0.01)
    await fog.report_result(task_id, "a", 1, [1, 2, 3])
    task = await fog.wait_for(task_id, timeout=1.0)
    assert task.result == [1, 2, 3]


async def test_emulated_presets_are_steered_by_the_policy(fog: FogCoordinator) -> None:
    for name in ("phone-critical-battery", "phone-hot", "desktop"):
        await fog.register_node(preset(name).replace(device_id=name))
    ids = [await submit(fog) for _ in range(6)]
    await fog.schedule_once()
    devices = {fog.get_task_status(i)["device"] for i in ids}
    assert "phone-critical-battery" not in devices
    assert "desktop" in devices


async def test_restart_keeps_unfinished_work(tmp_path: Path, clock: ManualClock) -> None:
    cfg = CoordinatorConfig(lifecycle=LIFECYCLE)
    async with FogCoordinator(
        store_url=str(tmp_path / "fog.db"), config=cfg, clock=clock, run_loop=False
    ) as fog:
        await fog.register_node(desktop("a"))
        queued = await submit(fog)
        await fog.schedule_once()
        more = await submit(fog)
    async with FogCoordinator(
        store_url=str(tmp_path / "fog.db"), config=cfg, clock=clock, run_loop=False
    ) as again:
        assert again.get_task_status(queued)["state"] == "scheduled"
        assert again.get_task_status(more)["state"] == "pending"
        assert again.nodes() == []  # not heard from since the restart: no new work yet
        await again.update_node_state("a", desktop("a"))
        assert [n.device_id for n in again.nodes()] == ["a"]
        assert again.nodes()[0].n_running == 1
        await again.report_result(queued, "a", 1, "ok")
        assert again.get_system_status()["tasks"]["completed"] == 1


async def test_the_loop_schedules_right_after_a_submit() -> None:
    # Real clock and loop: the 5 s period must not delay a submit-triggered round.
    async with FogCoordinator(store_url="memory") as fog:
        await fog.register_node(desktop("a"))
        task_id = await submit(fog)
        deadline = time.monotonic() + 2.0
        while fog.get_task_status(task_id)["state"] != "scheduled":
            assert time.monotonic() < deadline, "not scheduled within 2 s of submit"
            await asyncio.sleep(0.005)


async def _scheduled_within(fog: FogCoordinator, task_id: str, limit: float) -> float:
    start = time.monotonic()
    while fog.get_task_status(task_id)["state"] != "scheduled":
        assert time.monotonic() - start < limit, f"not scheduled within {limit} s"
        await asyncio.sleep(0.005)
    return time.monotonic() - start


async def test_rounds_right_after_a_placing_round_wait_out_the_gap() -> None:
    config = CoordinatorConfig(round_gap=0.4)
    async with FogCoordinator(store_url="memory", config=config) as fog:
        await fog.register_node(desktop("a"))
        await asyncio.sleep(0.5)  # registration's round is long past
        assert await _scheduled_within(fog, await submit(fog), 0.3) < 0.3  # idle: at once
        paced = await _scheduled_within(fog, await submit(fog), 2.0)
        assert paced > 0.25  # right after a placing round: waits for the gap
        await asyncio.sleep(0.5)
        assert await _scheduled_within(fog, await submit(fog), 0.3) < 0.3


async def test_a_device_running_tiny_tasks_gets_a_deeper_queue(fog: FogCoordinator) -> None:
    await fog.register_node(desktop("a"))
    slots = fog.nodes()[0].slot_cap
    assert fog.nodes()[0].queue_cap == slots * fog.config.queue_depth  # nothing known yet

    async def run_one(wall_s: float) -> None:
        task_id = await submit(fog, estimated_duration=1.0)
        await fog.schedule_once()
        await fog.report_result(task_id, "a", 1, "ok", wall_s=wall_s)

    for _ in range(3):
        await run_one(0.001)
    assert fog.queue_depth("a") == fog.config.queue_depth_tiny  # 64 × 1 ms: under 100 ms
    assert fog.nodes()[0].queue_cap == slots * fog.config.queue_depth_tiny  # at once
    for _ in range(10):  # its tasks now take a second: the average moves, the queue shrinks
        await run_one(1.0)
    assert fog.nodes()[0].queue_cap == slots * fog.config.queue_depth
    await run_one(float("nan"))  # a nonsense figure changes nothing
    assert fog.queue_depth("a") == fog.config.queue_depth
    for _ in range(30):  # 10 ms tasks: about queue_target_s (100 ms) of them per slot
        await run_one(0.01)
    assert fog.queue_depth("a") == 8


async def test_a_device_holding_the_model_is_preferred(fog: FogCoordinator) -> None:
    await fog.register_node(desktop("plain"))
    await fog.register_node(desktop("holder"))
    await fog.add_deployed_model("holder", "tutor_v1")
    task_id = await submit(fog, payload={"type": "model", "model_id": "tutor_v1", "input": [1.0]})
    await fog.schedule_once()
    assert fog.get_task_status(task_id)["device"] == "holder"
    record = await fog.remove_deployed_model("holder", "tutor_v1")
    assert record.models == ()


async def test_a_batch_that_is_wholly_a_retry_stores_nothing_and_answers_the_same_ids(
    fog: FogCoordinator,
) -> None:
    specs = [
        {"task_type": "preprocessing", "cpu_cores": 0.5, "idempotency_key": f"batch-{i}"}
        for i in range(3)
    ]
    first = await fog.submit_tasks(specs)
    assert await fog.submit_tasks(specs) == first  # nothing new: no task to log or track
    assert [(await fog.get_task(i)).id for i in first] == first
