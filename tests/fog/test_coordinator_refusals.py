"""Refusals at the coordinator: a task a device refuses moves on without using up an attempt, and
does not bounce back to the device that refused it; devices are placed by what they accept; bad
payload identifiers are refused at submit (Python API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_coordinator import LIFECYCLE, desktop, submit

from fogmesh.clock import ManualClock
from fogmesh.devices.model import Accepts
from fogmesh.errors import InvalidRequest
from fogmesh.fog.coordinator import CoordinatorConfig, FogCoordinator
from fogmesh.fog.tasks import TaskState
from fogmesh.store import MemoryStore, open_store

ECHO = {"type": "python", "function": "fogmesh.agent.workloads:echo", "args": {}}
LAB = {"type": "python", "function": "mylab.train:step", "args": {}}
WORKLOADS_ONLY = Accepts(python_modules=("fogmesh.agent.workloads",))
WITH_LAB = Accepts(python_modules=("fogmesh.agent.workloads", "mylab"))


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


def history(status: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(h["attempt"], h["device_id"], h["outcome"]) for h in status["history"]]


async def test_a_refused_payload_moves_to_another_device_without_using_an_attempt(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))  # says nothing of what it accepts (an older agent)
    task_id = await submit(fog, payload=ECHO, max_attempts=1)
    await fog.schedule_once()
    assert fog.get_task_status(task_id)["device"] == "a"

    refused = await fog.report_refused(
        task_id, "a", 1, "module 'fogmesh.agent.workloads' is not allow-listed here",
        code="not_allowed",
    )  # fmt: skip
    # max_attempts=1, and still pending: the refusal used nothing up.
    assert refused.state is TaskState.PENDING
    # Not back to "a", however often it reports: it does not take this payload.
    clock.advance(1.0)
    await fog.update_node_state("a", desktop("a"))
    await fog.schedule_once()
    why = fog.explain(task_id)
    assert why["state"] == "pending"
    assert "device refused this task: module" in why["text"]

    await fog.register_node(desktop("b"))
    await fog.schedule_once()
    placed = fog.get_task_status(task_id)
    assert (placed["state"], placed["device"], placed["attempt"]) == ("scheduled", "b", 2)
    done = await fog.report_result(task_id, "b", 2, {"ok": True})
    assert done.state is TaskState.COMPLETED
    assert history(fog.explain(task_id)) == [(1, "a", "not_accepted"), (2, "b", "completed")]


async def test_a_not_now_refusal_is_uncharged_and_waits_for_a_newer_reading(
    fog: FogCoordinator, clock: ManualClock
) -> None:
    await fog.register_node(desktop("a"))
    task_id = await submit(fog, payload=ECHO, max_attempts=1)
    await fog.schedule_once()
    # The device's own policy said no (it knew of a hot CPU the coordinator had not heard of).
    refused = await fog.report_refused(task_id, "a", 1, "critical: 90 °C", code="policy")
    assert refused.state is TaskState.PENDING
    # No round trip storm: the same device is not offered it again on the reading it refused on.
    for _ in range(3):
        await fog.schedule_once()
        assert fog.get_task_status(task_id)["state"] == "pending"
    assert "waiting for a newer reading" in fog.explain(task_id)["text"]
    # A newer reading: it may have it again.
    clock.advance(10.0)
    await fog.update_node_state("a", desktop("a"))
    await fog.schedule_once()
    again = fog.get_task_status(task_id)
    assert (again["state"], again["device"], again["attempt"]) == ("scheduled", "a", 2)
    assert history(fog.explain(task_id)) == [(1, "a", "refused"), (2, "a", None)]


async def test_tasks_go_only_where_their_payload_is_accepted(fog: FogCoordinator) -> None:
    await fog.register_node(desktop("strict", cores=16, accepts=WORKLOADS_ONLY))
    await fog.register_node(desktop("lab", cores=4, accepts=WITH_LAB))
    ids = [await submit(fog, payload=LAB, cpu_cores=0.5) for _ in range(3)]
    await fog.schedule_once()
    assert {fog.get_task_status(t)["device"] for t in ids} == {"lab"}
    # Nowhere takes commands: the task waits, and explain says why.
    cmd = await submit(fog, payload={"type": "command", "argv": ["true"]})
    await fog.schedule_once()
    why = fog.explain(cmd)
    assert why["state"] == "pending"
    assert "commands_disabled" in str(why["decision"]) or "command payloads" in why["text"]


async def test_what_a_device_accepts_is_kept_in_its_stored_profile(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = await open_store(tmp_path / "fog.db")
    fog = FogCoordinator(store, CoordinatorConfig(lifecycle=LIFECYCLE), clock=clock, run_loop=False)
    await fog.start()
    await fog.register_node(desktop("lab", accepts=WITH_LAB))
    clock.advance(5.0)
    await fog.update_node_state("lab", desktop("lab", accepts=WITH_LAB, cpu_temp_c=50.0))
    await fog.close()
    await store.close()
    store = await open_store(tmp_path / "fog.db")
    try:
        record = await store.get_device("lab")
        assert record.device_profile().accepts == WITH_LAB
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"payload": {"type": "model", "model_id": "../x"}}, "payload.model_id"),
        ({"constraints": {"requires_model": "../x"}}, "requires_model"),
        ({"payload": {"type": "python", "function": "a/b:c"}}, "payload.function"),
    ],
)
async def test_bad_payload_identifiers_are_refused_at_submit(
    fog: FogCoordinator, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        await submit(fog, **kwargs)
    assert info.value.details.get("field") == field
    with pytest.raises(InvalidRequest) as batch:
        await fog.submit_tasks([{"task_type": "inference"}, {"task_type": "inference", **kwargs}])
    assert batch.value.details.get("field") == f"tasks[1].{field}"
    assert sum((await fog.store.count_by_state()).values()) == 0
