"""Concurrent reports and heartbeats share transactions, with the same outcomes one call at a
time would give (memory, SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fogmesh.devices.model import DeviceProfile
from fogmesh.errors import DeviceNotFound, IllegalTransition, StaleAttempt, TaskNotFound
from fogmesh.fog.tasks import Task, TaskState
from fogmesh.store import SqlStore, Store

MakeTask = Callable[..., Task]
T0 = 1_700_000_000.0


async def _placed(store: Store, make_task: MakeTask, n: int, device: str = "dev-1") -> list[Task]:
    new = [make_task() for _ in range(n)]
    await store.add_tasks(new)
    placed = await store.place_many([(t.id, device, 0) for t in new], T0 + 1)
    assert all(isinstance(p, Task) for p in placed)
    return [p for p in placed if isinstance(p, Task)]


async def _settle(calls: list[Any]) -> list[Any]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


async def test_concurrent_started_and_completed_apply_in_order(
    store: Store, make_task: MakeTask
) -> None:
    tasks = await _placed(store, make_task, 50)
    calls: list[Any] = []
    for t in tasks:  # started, then completed, for every task, all in flight at once
        calls.append(store.mark_running(t.id, "dev-1", t.attempt, T0 + 2))
        calls.append(store.complete(t.id, "dev-1", t.attempt, {"x": t.id}, T0 + 3))
    outcomes = await _settle(calls)
    assert not [o for o in outcomes if isinstance(o, BaseException)]
    for t in tasks:
        stored = await store.get_task(t.id)
        assert stored.state is TaskState.COMPLETED
        assert stored.started_at == T0 + 2 and stored.finished_at == T0 + 3
        assert stored.result == {"x": t.id}
        assert stored.history[-1].outcome == "completed"
    if isinstance(store, SqlStore):
        assert store._reports is not None
        assert store._reports.batches < len(calls)  # they really shared transactions


async def test_a_batch_completes_each_task_exactly_once(store: Store, make_task: MakeTask) -> None:
    (task,) = await _placed(store, make_task, 1)
    outcomes = await _settle(
        [store.complete(task.id, "dev-1", task.attempt, {"n": i}, T0 + 2) for i in range(5)]
    )
    won = [o for o in outcomes if isinstance(o, Task)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1 and len(lost) == 4
    assert all(isinstance(e, IllegalTransition) for e in lost)
    assert (await store.get_task(task.id)).result == won[0].result


async def test_bad_reports_in_a_batch_fail_alone(store: Store, make_task: MakeTask) -> None:
    good, other = await _placed(store, make_task, 2)
    outcomes = await _settle(
        [
            store.complete(good.id, "dev-1", good.attempt, 1, T0 + 2),
            store.complete(other.id, "dev-9", other.attempt, 2, T0 + 2),  # not its lease
            store.mark_running(other.id, "dev-1", other.attempt + 1, T0 + 2),  # stale attempt
            store.complete("01NOSUCHTASK0000000000000", "dev-1", 1, 3, T0 + 2),
        ]
    )
    assert isinstance(outcomes[0], Task) and outcomes[0].state is TaskState.COMPLETED
    assert isinstance(outcomes[1], StaleAttempt)
    assert isinstance(outcomes[2], StaleAttempt)
    assert isinstance(outcomes[3], TaskNotFound)
    assert (await store.get_task(other.id)).state is TaskState.SCHEDULED


async def test_concurrent_heartbeats_share_a_commit_and_unknown_devices_fail_alone(
    backend: Any, make_profile: Callable[..., DeviceProfile]
) -> None:
    store = await backend.open()
    for i in range(20):
        await store.upsert_device(make_profile(f"dev-{i}"), T0)
    outcomes = await _settle(
        [
            store.heartbeat(f"dev-{i}", T0 + 5, make_profile(f"dev-{i}", battery_percent=40.0 + i))
            for i in range(20)
        ]
        + [store.heartbeat("dev-ghost", T0 + 5), store.heartbeat("dev-3", T0 + 6)]
    )
    assert isinstance(outcomes[20], DeviceNotFound)
    assert not [o for i, o in enumerate(outcomes) if i != 20 and isinstance(o, BaseException)]
    by_id = {d.device_id: d for d in await store.list_devices()}
    assert by_id["dev-7"].last_heartbeat == T0 + 5
    assert by_id["dev-7"].device_profile().battery_percent == 47.0
    assert by_id["dev-3"].last_heartbeat == T0 + 6  # the bare beat after the profile beat
    assert by_id["dev-3"].device_profile().battery_percent == 43.0
    assert "dev-ghost" not in by_id


@pytest.mark.parametrize("kind", ["sqlite"])
async def test_a_failed_flush_fails_every_caller_and_writes_nothing(
    kind: str, tmp_path: Any, make_task: MakeTask
) -> None:
    store = await SqlStore.open(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        (task,) = await _placed(store, make_task, 1)

        async def broken(_: Any) -> Any:
            raise RuntimeError("disk gone")

        assert store._reports is not None
        store._reports._flush = broken
        with pytest.raises(RuntimeError, match="disk gone"):
            await store.complete(task.id, "dev-1", task.attempt, 1, T0 + 2)
        assert (await store.get_task(task.id)).state is TaskState.SCHEDULED
    finally:
        await store.close()


async def test_a_lingering_batcher_writes_a_lone_call_at_once_and_gathers_a_stream() -> None:
    from fogmesh.store._batch import Batcher

    batches: list[list[int]] = []

    async def flush(items: Any) -> list[int]:
        batches.append(list(items))
        return list(items)

    loop = asyncio.get_running_loop()
    batcher: Batcher[int, int] = Batcher(flush, linger=0.2)
    t0 = loop.time()
    assert await batcher.submit(0) == 0
    assert loop.time() - t0 < 0.1  # idle: no lingering for a lone call
    # Right after that commit the stream is busy: calls in the next 0.2 s share one batch.
    calls = [asyncio.create_task(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0.05)
    calls.append(asyncio.create_task(batcher.submit(3)))
    assert await asyncio.gather(*calls) == [1, 2, 3]
    assert batches == [[0], [1, 2, 3]]
    await batcher.close()


async def _by_id_check(store: Store, outcomes: list[Any], ids: list[str]) -> None:
    """Every task an outcome returned equals a fresh read of it. (A batched SQL store answers
    each report with its task as the whole batch left it; the memory store answers one call at
    a time, so there only a task's last report is compared.)"""
    last: dict[str, Task] = {}
    for task_id, outcome in zip(ids, outcomes, strict=True):
        if isinstance(outcome, Task):
            assert outcome.id == task_id
            last[task_id] = outcome
            if isinstance(store, SqlStore):
                assert outcome == await store.get_task(task_id)
    assert last
    for task_id, task in last.items():
        assert task == await store.get_task(task_id)


async def test_batched_reports_return_what_a_read_gives(store: Store, make_task: MakeTask) -> None:
    tasks = await _placed(store, make_task, 8)
    both, started, done, wrong_device, stale, twice, started_before, again = tasks
    # A task with history: lost once, placed again.
    await store.requeue(again.id, again.attempt, "lost", "gone", T0 + 1.5)
    (replaced,) = await store.place_many([(again.id, "dev-1", again.attempt)], T0 + 1.75)
    assert isinstance(replaced, Task) and len(replaced.history) == 2
    await store.mark_running(started_before.id, "dev-1", started_before.attempt, T0 + 1.9)
    missing = "01NOSUCHTASK0000000000000"
    result = {"v": 0.1, "big": 1e300, "tiny": 5e-324, "l": [1, 2.5, "x", None, True], "s": "é"}
    calls: list[tuple[str, Any]] = [
        (both.id, store.mark_running(both.id, "dev-1", both.attempt, T0 + 2)),
        (both.id, store.complete(both.id, "dev-1", both.attempt, result, T0 + 3.1)),
        (started.id, store.mark_running(started.id, "dev-1", started.attempt, T0 + 2)),
        (done.id, store.complete(done.id, "dev-1", done.attempt, [0.3, -0.0], 1_700_000_004)),
        (wrong_device.id, store.complete(wrong_device.id, "dev-9", wrong_device.attempt, 1, T0)),
        (stale.id, store.mark_running(stale.id, "dev-1", stale.attempt + 1, T0 + 2)),
        (twice.id, store.complete(twice.id, "dev-1", twice.attempt, "first", T0 + 2)),
        (twice.id, store.complete(twice.id, "dev-1", twice.attempt, "second", T0 + 2)),
        (twice.id, store.mark_running(twice.id, "dev-1", twice.attempt, T0 + 2)),
        (started_before.id, store.complete(started_before.id, "dev-1", 1, None, T0 + 2)),
        (again.id, store.complete(again.id, "dev-1", replaced.attempt, {"n": 2}, T0 + 2)),
        (missing, store.complete(missing, "dev-1", 1, 3, T0)),
    ]  # fmt: skip
    outcomes = await _settle([call for _, call in calls])
    kinds = [type(o).__name__ if isinstance(o, BaseException) else "Task" for o in outcomes]
    assert kinds == [
        "Task", "Task", "Task", "Task", "StaleAttempt", "StaleAttempt", "Task",
        "IllegalTransition", "IllegalTransition", "Task", "Task", "TaskNotFound",
    ]  # fmt: skip
    await _by_id_check(store, outcomes, [task_id for task_id, _ in calls])
    if isinstance(store, SqlStore):
        assert store._reports is not None and store._reports.batches < len(calls)
    final = {t.id: t for t in outcomes if isinstance(t, Task)}
    assert final[both.id].result == result and final[both.id].started_at == T0 + 2
    assert final[done.id].started_at == final[done.id].finished_at == 1_700_000_004
    assert final[started_before.id].started_at == T0 + 1.9
    assert [(h.attempt, h.outcome) for h in final[again.id].history] == [
        (1, "lost"),
        (2, "completed"),
    ]
    for untouched in (wrong_device, stale):
        assert await store.get_task(untouched.id) == untouched


async def test_place_many_returns_what_a_read_gives(store: Store, make_task: MakeTask) -> None:
    fresh = [make_task() for _ in range(3)]
    lost, taken, wrong_attempt = make_task(), make_task(), make_task()
    await store.add_tasks([*fresh, lost, taken, wrong_attempt])
    (first,) = await store.place_many([(lost.id, "dev-1", 0)], T0 + 1)
    assert isinstance(first, Task)
    await store.requeue(lost.id, first.attempt, "timeout", "slow", T0 + 1.5)
    await store.place_many([(taken.id, "dev-1", 0)], T0 + 1)
    plan = [
        (fresh[0].id, "dev-1", 0),
        (fresh[1].id, "dev-2", 0),
        (fresh[1].id, "dev-3", 0),  # the same task twice: the second line loses
        (lost.id, "dev-2", first.attempt),
        (taken.id, "dev-2", 0),  # no longer pending
        (wrong_attempt.id, "dev-2", 4),
        ("01NOSUCHTASK0000000000000", "dev-2", 0),
        (fresh[2].id, "dev-3", 0),
    ]
    outcomes = await store.place_many(plan, 1_700_000_002)  # an int time, stored as a float
    kinds = [type(o).__name__ if isinstance(o, BaseException) else "Task" for o in outcomes]
    assert kinds == [
        "Task", "Task", "StaleAttempt", "Task", "StaleAttempt", "StaleAttempt", "TaskNotFound",
        "Task",
    ]  # fmt: skip
    await _by_id_check(store, list(outcomes), [task_id for task_id, _, _ in plan])
    placed = {t.id: t for t in outcomes if isinstance(t, Task)}
    assert [(h.attempt, h.device_id, h.outcome) for h in placed[lost.id].history] == [
        (1, "dev-1", "timeout"),
        (2, "dev-2", None),
    ]
    assert placed[fresh[1].id].assigned_device == "dev-2"
