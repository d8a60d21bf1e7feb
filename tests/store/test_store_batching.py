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
