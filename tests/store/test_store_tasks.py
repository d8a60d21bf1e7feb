"""Store contract, tasks: run against memory, SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from fogmesh.devices.model import DeviceType
from fogmesh.errors import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidRequest,
    StaleAttempt,
    StoreError,
    TaskNotFound,
)
from fogmesh.fog.tasks import (
    MAX_PAYLOAD_BYTES,
    CommandPayload,
    ModelPayload,
    PythonPayload,
    Task,
    TaskConstraints,
    TaskPriority,
    TaskResources,
    TaskState,
    TaskType,
)
from fogmesh.store import Store
from fogmesh.store.base import SubmitKey

MakeTask = Callable[..., Task]
T0 = 1_700_000_000.0


async def added(store: Store, make_task: MakeTask, **fields: Any) -> Task:
    task = make_task(**fields)
    await store.add_task(task)
    return task


async def total(store: Store) -> int:
    return sum((await store.count_by_state()).values())


# -- submit and read ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        None,
        PythonPayload("fogmesh.agent.workloads:echo", {"text": "hi", "n": [1, 2.5, None]}),
        ModelPayload("mobilenet-int8", {"pixels": [0, 255]}),
        CommandPayload(["echo", "hi"]),
    ],
    ids=["none", "python", "model", "command"],
)
async def test_add_then_get_returns_the_same_task(
    store: Store, make_task: MakeTask, payload: Any
) -> None:
    task = make_task(
        type=TaskType.TRAINING,
        priority=TaskPriority.HIGH,
        resources=TaskResources(cpu_cores=2.5, memory_mb=1024, requires_gpu=True),
        constraints=TaskConstraints(
            device_types=frozenset({DeviceType.LAPTOP, DeviceType.DESKTOP}),
            min_battery_percent=40.0,
            requires_model="m1",
        ),
        payload=payload,
        deadline=T0 + 60,
        max_attempts=5,
    )
    await store.add_task(task)
    assert await store.get_task(task.id) == task


async def test_get_unknown_task_is_task_not_found(store: Store) -> None:
    with pytest.raises(TaskNotFound):
        await store.get_task("NOPE")


async def test_duplicate_id_is_refused_and_the_original_kept(
    store: Store, make_task: MakeTask
) -> None:
    task = await added(store, make_task, priority=TaskPriority.LOW)
    with pytest.raises(InvalidRequest, match="already exists"):
        await store.add_task(msgspec.structs.replace(task, priority=TaskPriority.CRITICAL))
    assert (await store.get_task(task.id)).priority == TaskPriority.LOW
    assert await total(store) == 1


BAD_TASKS: list[tuple[str, dict[str, Any]]] = [
    ("negative cpu", {"resources": TaskResources(cpu_cores=-1)}),
    ("zero memory", {"resources": TaskResources(memory_mb=0)}),
    ("negative duration", {"resources": TaskResources(estimated_duration=-5)}),
    ("unknown type", {"type": "mining"}),
    ("unknown priority", {"priority": 5}),
    (
        "oversized payload",
        {"payload": PythonPayload("m:f", {"blob": "x" * (MAX_PAYLOAD_BYTES + 1)})},
    ),
    ("not json", {"payload": PythonPayload("m:f", {"x": object()})}),
    ("bad function", {"payload": PythonPayload("no_colon")}),
    ("already placed", {"state": TaskState.SCHEDULED}),
    ("attempt set", {"attempt": 2}),
    ("zero attempts", {"max_attempts": 0}),
    ("empty id", {"id": ""}),
    ("nan deadline", {"deadline": float("nan")}),
]


@pytest.mark.parametrize(("case", "fields"), BAD_TASKS, ids=[c for c, _ in BAD_TASKS])
async def test_bad_task_is_refused_and_nothing_stored(
    store: Store, make_task: MakeTask, case: str, fields: dict[str, Any]
) -> None:
    good = make_task()
    bad = make_task(**fields)
    with pytest.raises(InvalidRequest):
        await store.add_task(bad)
    with pytest.raises(InvalidRequest):
        await store.add_tasks([good, bad])
    assert await total(store) == 0


async def test_bulk_add_is_all_or_nothing_on_a_duplicate(store: Store, make_task: MakeTask) -> None:
    existing = await added(store, make_task)
    fresh = [make_task() for _ in range(5)]
    with pytest.raises(InvalidRequest, match=existing.id):
        await store.add_tasks([*fresh, existing])
    assert await total(store) == 1
    with pytest.raises(InvalidRequest, match="twice"):
        await store.add_tasks([fresh[0], fresh[0]])
    await store.add_tasks(fresh)
    assert await total(store) == 6


async def test_list_filters_by_state_and_pages_in_id_order(
    store: Store, make_task: MakeTask
) -> None:
    tasks = [await added(store, make_task) for _ in range(7)]
    await store.place(tasks[1].id, "d", 0, T0)
    await store.place(tasks[4].id, "d", 0, T0)
    assert [t.id for t in await store.list_tasks(limit=100)] == [t.id for t in tasks]
    scheduled = await store.list_tasks(TaskState.SCHEDULED)
    assert [t.id for t in scheduled] == [tasks[1].id, tasks[4].id]
    pending = await store.list_tasks([TaskState.PENDING, TaskState.COMPLETED], limit=3)
    assert [t.id for t in pending] == [tasks[0].id, tasks[2].id, tasks[3].id]
    rest = await store.list_tasks(TaskState.PENDING, after=pending[-1].id)
    assert [t.id for t in rest] == [tasks[5].id, tasks[6].id]
    assert await store.list_tasks(limit=0) == []
    with pytest.raises(InvalidRequest):
        await store.list_tasks(limit=-1)


async def test_pending_is_priority_then_age_or_pure_age(store: Store, make_task: MakeTask) -> None:
    spec = [  # (name, priority, created_at)
        ("low-old", TaskPriority.LOW, T0 + 1),
        ("high-new", TaskPriority.HIGH, T0 + 9),
        ("crit", TaskPriority.CRITICAL, T0 + 5),
        ("high-old", TaskPriority.HIGH, T0 + 2),
        ("normal", TaskPriority.NORMAL, T0 + 3),
    ]
    by_id = {}
    for name, prio, created in spec:
        t = await added(store, make_task, priority=prio, created_at=created)
        by_id[t.id] = name
    placed = await added(store, make_task, priority=TaskPriority.CRITICAL, created_at=T0)
    await store.place(placed.id, "d", 0, T0)

    names = [by_id[t.id] for t in await store.pending_tasks()]
    assert names == ["crit", "high-old", "high-new", "normal", "low-old"]
    assert [by_id[t.id] for t in await store.pending_tasks(2)] == ["crit", "high-old"]
    by_age = [by_id[t.id] for t in await store.pending_tasks(order="age")]
    assert by_age == ["low-old", "high-old", "normal", "crit", "high-new"]


async def test_counts_by_state_are_right_and_complete(store: Store, make_task: MakeTask) -> None:
    tasks = [await added(store, make_task) for _ in range(8)]
    await store.place(tasks[0].id, "d", 0, T0)  # scheduled
    await store.place(tasks[1].id, "d", 0, T0)
    await store.mark_running(tasks[1].id, "d", 1, T0)  # running
    await store.place(tasks[2].id, "d", 0, T0)
    await store.complete(tasks[2].id, "d", 1, "ok", T0)  # completed
    await store.place(tasks[3].id, "d", 0, T0)
    await store.fail(tasks[3].id, "d", 1, {"code": "boom", "reason": "x"}, T0)  # failed
    await store.cancel(tasks[4].id, T0)  # cancelled
    await store.place(tasks[5].id, "d", 0, T0)
    await store.requeue(tasks[5].id, 1, "lost", "gone", T0)  # pending again
    counts = await store.count_by_state()
    assert counts == {
        TaskState.PENDING: 3,
        TaskState.SCHEDULED: 1,
        TaskState.RUNNING: 1,
        TaskState.COMPLETED: 1,
        TaskState.FAILED: 1,
        TaskState.CANCELLED: 1,
    }
    for state, n in counts.items():
        assert len(await store.list_tasks(state, limit=1000)) == n


# -- transitions ----------------------------------------------------------------------------


async def test_place_takes_a_new_lease(store: Store, make_task: MakeTask) -> None:
    task = await added(store, make_task)
    placed = await store.place(task.id, "phone-1", 0, T0 + 1)
    assert (placed.state, placed.attempt, placed.assigned_device) == (
        TaskState.SCHEDULED,
        1,
        "phone-1",
    )
    assert placed.scheduled_at == T0 + 1
    assert [(h.attempt, h.device_id, h.placed_at, h.ended_at) for h in placed.history] == [
        (1, "phone-1", T0 + 1, None)
    ]
    assert await store.get_task(task.id) == placed


async def test_a_second_placement_of_the_same_attempt_is_stale(
    store: Store, make_task: MakeTask
) -> None:
    task = await added(store, make_task)
    first = await store.place(task.id, "a", 0, T0)
    with pytest.raises(StaleAttempt):
        await store.place(task.id, "b", 0, T0)
    with pytest.raises(IllegalTransition):  # right attempt, wrong state
        await store.place(task.id, "b", 1, T0)
    assert await store.get_task(task.id) == first


async def test_running_and_completing_need_the_current_lease(
    store: Store, make_task: MakeTask
) -> None:
    task = await added(store, make_task)
    await store.place(task.id, "a", 0, T0)
    for device, attempt in (("b", 1), ("a", 2), ("a", 0)):
        with pytest.raises(StaleAttempt):
            await store.mark_running(task.id, device, attempt, T0)
        with pytest.raises(StaleAttempt):
            await store.complete(task.id, device, attempt, "x", T0)
        with pytest.raises(StaleAttempt):
            await store.fail(task.id, device, attempt, {"code": "c", "reason": "r"}, T0)
    running = await store.mark_running(task.id, "a", 1, T0 + 2)
    assert (running.state, running.started_at) == (TaskState.RUNNING, T0 + 2)
    with pytest.raises(IllegalTransition):
        await store.mark_running(task.id, "a", 1, T0 + 3)
    done = await store.complete(task.id, "a", 1, {"label": "cat", "p": 0.9}, T0 + 4)
    assert (done.state, done.result, done.finished_at) == (
        TaskState.COMPLETED,
        {"label": "cat", "p": 0.9},
        T0 + 4,
    )
    assert done.history[-1].outcome == "completed"
    assert done.history[-1].ended_at == T0 + 4
    with pytest.raises(IllegalTransition):  # exactly once
        await store.complete(task.id, "a", 1, "again", T0 + 5)
    assert await store.get_task(task.id) == done


async def test_a_fast_task_completes_straight_from_scheduled(
    store: Store, make_task: MakeTask
) -> None:
    task = await added(store, make_task)
    await store.place(task.id, "a", 0, T0)
    done = await store.complete(task.id, "a", 1, None, T0 + 2)
    assert done.state is TaskState.COMPLETED
    assert done.result is None
    assert done.started_at == done.finished_at == T0 + 2  # its result says it ran
    other = await added(store, make_task)
    await store.place(other.id, "a", 0, T0)
    await store.mark_running(other.id, "a", 1, T0 + 1)
    done = await store.complete(other.id, "a", 1, None, T0 + 2)
    assert (done.started_at, done.finished_at) == (T0 + 1, T0 + 2)  # a real start is kept


async def test_late_result_from_a_lost_device_cannot_overwrite_the_retry(
    store: Store, make_task: MakeTask
) -> None:
    task = await added(store, make_task)
    await store.place(task.id, "lost-phone", 0, T0)
    await store.mark_running(task.id, "lost-phone", 1, T0 + 1)
    requeued = await store.requeue(task.id, 1, "lost", "missed 3 heartbeats", T0 + 10)
    assert (requeued.state, requeued.assigned_device) == (TaskState.PENDING, None)
    with pytest.raises(StaleAttempt):  # pending again: nobody holds a lease
        await store.complete(task.id, "lost-phone", 1, "late", T0 + 11)
    await store.place(task.id, "laptop", 1, T0 + 12)
    before = await store.get_task(task.id)
    with pytest.raises(StaleAttempt):
        await store.complete(task.id, "lost-phone", 1, "late", T0 + 13)
    with pytest.raises(StaleAttempt):
        await store.fail(task.id, "lost-phone", 1, {"code": "x", "reason": "y"}, T0 + 13)
    with pytest.raises(StaleAttempt):
        await store.mark_running(task.id, "lost-phone", 1, T0 + 13)
    assert await store.get_task(task.id) == before
    done = await store.complete(task.id, "laptop", 2, "right", T0 + 14)
    assert done.result == "right"
    assert [(h.attempt, h.device_id, h.outcome) for h in done.history] == [
        (1, "lost-phone", "lost"),
        (2, "laptop", "completed"),
    ]
    assert done.history[0].reason == "missed 3 heartbeats"


async def test_requeue_fails_the_task_with_its_history_once_attempts_are_used(
    store: Store, make_task: MakeTask
) -> None:
    task = await added(store, make_task, max_attempts=3)
    for attempt, outcome in enumerate(("lost", "timeout"), start=1):
        await store.place(task.id, f"d{attempt}", attempt - 1, T0 + attempt)
        again = await store.requeue(task.id, attempt, outcome, f"r{attempt}", T0 + attempt)
        assert again.state is TaskState.PENDING
    await store.place(task.id, "d3", 2, T0 + 3)
    final = await store.requeue(task.id, 3, "failed", "too hot", T0 + 4)
    assert final.state is TaskState.FAILED
    assert final.error is not None and final.error["code"] == "max_attempts"
    assert final.finished_at == T0 + 4
    assert [(h.attempt, h.device_id, h.outcome, h.reason) for h in final.history] == [
        (1, "d1", "lost", "r1"),
        (2, "d2", "timeout", "r2"),
        (3, "d3", "failed", "too hot"),
    ]
    assert await store.get_task(task.id) == final
    assert await store.pending_tasks() == []


@pytest.mark.parametrize(
    "outcome",
    [
        "preempted",
        "refused",
        "not_accepted",
        "disconnected",
        "offline",
        "coordinator_restart",
        "removed",
    ],
)
async def test_a_loss_or_refusal_that_is_not_the_tasks_fault_is_not_charged(
    store: Store, make_task: MakeTask, outcome: str
) -> None:
    # A device that refuses a task (its policy, or a payload it does not take) burns nothing.
    task = await added(store, make_task, max_attempts=1)
    for attempt in (1, 2, 3):
        await store.place(task.id, "d", attempt - 1, T0)
        t = await store.requeue(task.id, attempt, outcome, "not the task's fault", T0)
        assert t.state is TaskState.PENDING
    await store.place(task.id, "d", 3, T0)
    assert (await store.requeue(task.id, 4, "lost", "gone", T0)).state is TaskState.FAILED


async def test_requeue_needs_the_current_leased_attempt(store: Store, make_task: MakeTask) -> None:
    task = await added(store, make_task)
    with pytest.raises(IllegalTransition):
        await store.requeue(task.id, 0, "lost", "x", T0)  # never placed
    await store.place(task.id, "d", 0, T0)
    with pytest.raises(StaleAttempt):
        await store.requeue(task.id, 7, "lost", "x", T0)
    with pytest.raises(InvalidRequest):
        await store.requeue(task.id, 1, "", "x", T0)
    await store.requeue(task.id, 1, "timeout", "slow", T0)
    with pytest.raises(IllegalTransition):  # lost sweep and timeout sweep both fire
        await store.requeue(task.id, 1, "lost", "x", T0)


async def test_fail_records_the_error(store: Store, make_task: MakeTask) -> None:
    task = await added(store, make_task)
    await store.place(task.id, "d", 0, T0)
    with pytest.raises(InvalidRequest):
        await store.fail(task.id, "d", 1, {"reason": "no code"}, T0)
    failed = await store.fail(task.id, "d", 1, {"code": "oom", "reason": "killed"}, T0 + 1)
    assert (failed.state, failed.error) == (TaskState.FAILED, {"code": "oom", "reason": "killed"})
    assert (failed.history[-1].outcome, failed.history[-1].reason) == ("failed", "killed")


@pytest.mark.parametrize("stage", ["pending", "scheduled", "running"])
async def test_cancel_from_every_live_state(store: Store, make_task: MakeTask, stage: str) -> None:
    task = await added(store, make_task)
    if stage != "pending":
        await store.place(task.id, "d", 0, T0)
    if stage == "running":
        await store.mark_running(task.id, "d", 1, T0)
    cancelled = await store.cancel(task.id, T0 + 1, "user asked")
    assert cancelled.state is TaskState.CANCELLED
    assert cancelled.error == {"code": "cancelled", "reason": "user asked"}
    if stage != "pending":
        assert cancelled.assigned_device == "d"  # so the device can be told to stop
        assert cancelled.history[-1].outcome == "cancelled"
        with pytest.raises(IllegalTransition):
            await store.complete(task.id, "d", 1, "late", T0 + 2)
    with pytest.raises(IllegalTransition):
        await store.cancel(task.id, T0 + 2)
    assert await store.get_task(task.id) == cancelled


async def test_cancel_keeps_a_closed_attempt_closed(store: Store, make_task: MakeTask) -> None:
    task = await added(store, make_task)
    await store.place(task.id, "d", 0, T0)
    await store.requeue(task.id, 1, "lost", "gone", T0 + 1)
    cancelled = await store.cancel(task.id, T0 + 2)
    assert [(h.outcome, h.ended_at) for h in cancelled.history] == [("lost", T0 + 1)]


async def test_fail_expired_fails_only_pending_tasks_past_their_deadline(
    store: Store, make_task: MakeTask
) -> None:
    due = await added(store, make_task, deadline=T0 + 10)
    exact = await added(store, make_task, deadline=T0 + 20)
    later = await added(store, make_task, deadline=T0 + 30)
    never = await added(store, make_task)
    placed = await added(store, make_task, deadline=T0 + 5)
    await store.place(placed.id, "d", 0, T0)
    assert await store.fail_expired(T0 + 20) == sorted([due.id, exact.id])
    failed = await store.get_task(due.id)
    assert (failed.state, failed.error, failed.finished_at) == (
        TaskState.FAILED,
        {"code": "deadline", "reason": "deadline"},
        T0 + 20,
    )
    assert (await store.get_task(later.id)).state is TaskState.PENDING
    assert (await store.get_task(never.id)).state is TaskState.PENDING
    assert (await store.get_task(placed.id)).state is TaskState.SCHEDULED
    assert await store.fail_expired(T0 + 20) == []


async def test_transitions_on_unknown_tasks_are_task_not_found(store: Store) -> None:
    calls = [
        store.place("X", "d", 0, T0),
        store.mark_running("X", "d", 1, T0),
        store.complete("X", "d", 1, None, T0),
        store.fail("X", "d", 1, {"code": "c", "reason": "r"}, T0),
        store.requeue("X", 1, "lost", "r", T0),
        store.cancel("X", T0),
    ]
    for call in calls:
        with pytest.raises(TaskNotFound):
            await call


async def test_an_oversized_or_non_json_result_is_refused_and_nothing_changes(
    store: Store, make_task: MakeTask
) -> None:
    task = await added(store, make_task)
    placed = await store.place(task.id, "d", 0, T0)
    with pytest.raises(InvalidRequest):
        await store.complete(task.id, "d", 1, "x" * (MAX_PAYLOAD_BYTES + 1), T0)
    with pytest.raises(InvalidRequest):
        await store.complete(task.id, "d", 1, {"x": object()}, T0)
    assert await store.get_task(task.id) == placed


async def test_leased_tasks_by_device(store: Store, make_task: MakeTask) -> None:
    a1, a2, b1, _free = [await added(store, make_task) for _ in range(4)]
    await store.place(a1.id, "a", 0, T0 + 1)
    await store.place(b1.id, "b", 0, T0 + 2)
    await store.place(a2.id, "a", 0, T0 + 3)
    await store.mark_running(a2.id, "a", 1, T0 + 4)
    assert [t.id for t in await store.leased_tasks("a")] == [a1.id, a2.id]
    assert [t.id for t in await store.leased_tasks()] == [a1.id, b1.id, a2.id]
    await store.complete(a1.id, "a", 1, None, T0)
    assert [t.id for t in await store.leased_tasks("a")] == [a2.id]
    assert await store.leased_tasks("nobody") == []


# -- concurrency ----------------------------------------------------------------------------


async def test_concurrent_completions_of_one_lease_succeed_exactly_once(
    store: Store, make_task: MakeTask
) -> None:
    task = await added(store, make_task)
    await store.place(task.id, "d", 0, T0)
    outcomes = await asyncio.gather(
        *(store.complete(task.id, "d", 1, i, T0) for i in range(20)), return_exceptions=True
    )
    winners = [o for o in outcomes if isinstance(o, Task)]
    assert len(winners) == 1
    assert all(isinstance(o, IllegalTransition) for o in outcomes if not isinstance(o, Task))
    assert (await store.get_task(task.id)).result == winners[0].result


async def test_concurrent_placements_give_one_lease(store: Store, make_task: MakeTask) -> None:
    task = await added(store, make_task)
    outcomes = await asyncio.gather(
        *(store.place(task.id, f"d{i}", 0, T0) for i in range(10)), return_exceptions=True
    )
    assert sum(isinstance(o, Task) for o in outcomes) == 1
    assert all(isinstance(o, Task | StaleAttempt) for o in outcomes)


async def test_many_coroutines_at_once(store: Store, make_task: MakeTask) -> None:
    tasks = [make_task() for _ in range(300)]

    async def life(task: Task, i: int) -> None:
        await store.add_task(task)
        await store.get_task(task.id)
        await store.place(task.id, f"d{i % 7}", 0, T0)
        await store.mark_running(task.id, f"d{i % 7}", 1, T0)
        await store.count_by_state()
        await store.complete(task.id, f"d{i % 7}", 1, i, T0)

    await asyncio.gather(*(life(t, i) for i, t in enumerate(tasks)))
    assert (await store.count_by_state())[TaskState.COMPLETED] == 300


async def test_a_closed_store_refuses_work(store: Store, make_task: MakeTask) -> None:
    await store.close()
    with pytest.raises(StoreError):
        await store.add_task(make_task())
    with pytest.raises(StoreError):
        await store.get_task("X")


# -- idempotency keys -------------------------------------------------------------------------


def key(name: str, expires_at: float = T0 + 3600) -> SubmitKey:
    return SubmitKey(name, expires_at)


async def test_a_keyed_task_is_stored_once_and_its_key_returns_its_id(
    store: Store, make_task: MakeTask
) -> None:
    first = make_task()
    assert await store.add_keyed_tasks([first], [key("k1")], T0) == [first.id]
    retry = make_task()  # a retry builds a new task (new id) with the same key and spec
    assert await store.add_keyed_tasks([retry], [key("k1")], T0 + 1) == [first.id]
    with pytest.raises(TaskNotFound):
        await store.get_task(retry.id)
    assert [t.id for t in await store.list_tasks()] == [first.id]


async def test_a_partly_stored_batch_stores_only_its_new_tasks(
    store: Store, make_task: MakeTask
) -> None:
    a, b = make_task(), make_task()
    assert await store.add_keyed_tasks([a, b], [key("ka"), None], T0) == [a.id, b.id]
    a2, c, d = make_task(), make_task(), make_task()
    ids = await store.add_keyed_tasks([a2, c, d], [key("ka"), key("kc"), None], T0)
    assert ids == [a.id, c.id, d.id]
    assert sorted(t.id for t in await store.list_tasks()) == sorted([a.id, b.id, c.id, d.id])


async def test_the_same_key_with_another_spec_is_a_conflict_and_stores_nothing(
    store: Store, make_task: MakeTask
) -> None:
    a = make_task(payload=PythonPayload(function="m:f", args={"x": 1, "y": [1, 2]}))
    await store.add_keyed_tasks([a], [key("k")], T0)
    # The same spec (its dict's keys in another order, a tuple for a list) is a retry …
    same = make_task(payload=PythonPayload(function="m:f", args={"y": (1, 2), "x": 1}))
    assert await store.add_keyed_tasks([same], [key("k")], T0) == [a.id]
    # … anything else a submit says about the task is not.
    b = make_task()
    for other in (
        make_task(payload=PythonPayload(function="m:f", args={"x": 2, "y": [1, 2]})),
        make_task(payload=PythonPayload(function="m:f", args={"x": 1, "y": [1, 2]}),
                  priority=TaskPriority.HIGH),
        make_task(payload=PythonPayload(function="m:f", args={"x": 1, "y": [1, 2]}),
                  max_attempts=1),
    ):  # fmt: skip
        with pytest.raises(IdempotencyConflict) as caught:
            await store.add_keyed_tasks([b, other], [key("new"), key("k")], T0)
        assert caught.value.details["task_id"] == a.id
        assert [t.id for t in await store.list_tasks()] == [a.id]
    # "new" was not kept either: it stores a task now.
    assert await store.add_keyed_tasks([b], [key("new")], T0) == [b.id]


async def test_an_expired_key_is_forgotten(store: Store, make_task: MakeTask) -> None:
    a = make_task()
    await store.add_keyed_tasks([a], [key("k", expires_at=T0 + 10)], T0)
    b = make_task(priority=TaskPriority.LOW)  # another task: no conflict, the key was forgotten
    assert await store.add_keyed_tasks([b], [key("k")], T0 + 11) == [b.id]
    assert {t.id for t in await store.list_tasks()} == {a.id, b.id}


@pytest.mark.parametrize(
    "keys",
    [
        [SubmitKey("", T0)],
        [SubmitKey("k" * 257, T0)],
        [SubmitKey("k", float("nan"))],
        [SubmitKey("k", True)],
        [],
        ["k"],
    ],
)
async def test_bad_keys_are_refused_and_nothing_stored(
    store: Store, make_task: MakeTask, keys: Any
) -> None:
    with pytest.raises(InvalidRequest):
        await store.add_keyed_tasks([make_task()], keys, T0)
    assert await store.list_tasks() == []


async def test_one_key_twice_in_one_submit_is_refused(store: Store, make_task: MakeTask) -> None:
    with pytest.raises(InvalidRequest, match="two tasks"):
        await store.add_keyed_tasks([make_task(), make_task()], [key("k"), key("k")], T0)
    assert await store.list_tasks() == []


async def test_concurrent_retries_with_one_key_store_one_task(
    store: Store, make_task: MakeTask
) -> None:
    tries = [make_task() for _ in range(8)]
    answers = await asyncio.gather(*(store.add_keyed_tasks([t], [key("same")], T0) for t in tries))
    winner = answers[0][0]
    assert all(a == [winner] for a in answers)
    assert [t.id for t in await store.list_tasks()] == [winner]


async def test_keyed_tasks_and_keys_are_durable(sql_backend: Any, make_task: MakeTask) -> None:
    store = await sql_backend.open()
    a = make_task()
    await store.add_keyed_tasks([a], [key("k")], T0)
    await store.close()
    again = await sql_backend.open()
    assert await again.add_keyed_tasks([make_task()], [key("k")], T0) == [a.id]
    assert [t.id for t in await again.list_tasks()] == [a.id]


async def test_two_stores_racing_with_one_key_store_one_task(
    sql_backend: Any, make_task: MakeTask
) -> None:
    one, two = await sql_backend.open(), await sql_backend.open()
    tries = [make_task() for _ in range(6)]
    answers = await asyncio.gather(
        *(
            s.add_keyed_tasks([t], [key("race")], T0)
            for s, t in zip([one, two] * 3, tries, strict=True)
        )
    )
    assert len({a[0] for a in answers}) == 1
    assert len(await one.list_tasks()) == 1


async def test_one_batch_with_a_retry_of_a_call_in_flight_stores_its_task_once(
    store: Store, make_task: MakeTask
) -> None:
    def task() -> Task:
        return make_task(payload=PythonPayload(function="m:f", args={"y": (1, 2)}))

    first, retry = task(), task()
    one, two = await asyncio.gather(
        store.add_keyed_tasks([first], [key("k")], T0),
        store.add_keyed_tasks([retry], [key("k")], T0),  # may share the first one's commit
    )
    assert one == two == [first.id]
    assert [t.id for t in await store.list_tasks()] == [first.id]
