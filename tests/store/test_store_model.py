"""Model-based check: random sequences of calls give the same answers on the memory store (the
reference) and the SQLite store, and the counts always agree with the listed tasks."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogmesh.errors import FogmeshError
from fogmesh.fog.tasks import Task, TaskPriority, TaskState, TaskType
from fogmesh.store import MemoryStore, Placement, SqlStore, Store

T0 = 1_700_000_000.0
TASK_IDS = [f"T{i}" for i in range(4)]
DEVICES = ["a", "b"]

task_ids = st.sampled_from(TASK_IDS)
devices = st.sampled_from(DEVICES)
# "current" is resolved against the reference store, so that leases are often right and long
# chains (place → requeue → place → complete ...) happen; numbers exercise stale leases.
attempts = st.one_of(st.just("current"), st.just("current"), st.integers(0, 3))


def adds(ids: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.just("add"),
        ids,
        st.sampled_from(list(TaskPriority)),
        st.integers(0, 5),
        st.sampled_from([None, 3.0, 8.0]),
        st.integers(1, 3),
    )


# Every run first submits all tasks (ids in creation order need not match created_at order),
# then mixes calls; a later "add" is a duplicate and must be refused by both stores.
setup = (
    st.tuples(*(adds(st.just(task_id)) for task_id in TASK_IDS)).map(list).flatmap(st.permutations)
)
place = st.tuples(st.just("place"), task_ids, devices, attempts)
run_ = st.tuples(st.just("run"), task_ids, devices, attempts)
requeue = st.tuples(st.just("requeue"), task_ids, attempts, st.sampled_from(["lost", "preempted"]))
# Weighted towards calls that keep tasks alive, so lease chains get long.
ops = st.one_of(
    place,
    place,
    place,
    requeue,
    requeue,
    requeue,
    run_,
    run_,
    adds(task_ids),
    st.tuples(st.just("place_many"), st.lists(st.tuples(task_ids, devices, attempts), max_size=3)),
    st.tuples(st.just("complete"), task_ids, devices, attempts),
    st.tuples(st.just("fail"), task_ids, devices, attempts),
    st.tuples(st.just("cancel"), task_ids),
    st.tuples(st.just("expire"), st.integers(0, 10)),
)


async def resolve(reference: MemoryStore, op: tuple[Any, ...]) -> tuple[Any, ...]:
    """Replace "current" with the reference's current attempt (0 for an unknown task)."""

    async def current(task_id: str) -> int:
        try:
            return (await reference.get_task(task_id)).attempt
        except FogmeshError:
            return 0

    kind, *args = op
    if kind == "place_many":
        return (
            kind,
            [(t, d, await current(t) if a == "current" else a) for t, d, a in args[0]],
        )
    if kind in ("place", "run", "complete", "fail", "requeue"):
        index = 2 if kind != "requeue" else 1
        if args[index] == "current":
            args[index] = await current(args[0])
    return (kind, *args)


async def apply(store: Store, op: tuple[Any, ...], step: int) -> Any:
    now = T0 + step
    kind, *args = op
    if kind == "add":
        task_id, prio, created, deadline, max_attempts = args
        task = Task(
            id=task_id,
            type=TaskType.EMBEDDING,
            priority=prio,
            created_at=T0 + created,
            deadline=None if deadline is None else T0 + deadline,
            max_attempts=max_attempts,
        )
        return await store.add_task(task)
    if kind == "place":
        return await store.place(args[0], args[1], args[2], now)
    if kind == "place_many":
        outcomes = await store.place_many([Placement(*p) for p in args[0]], now)
        return [o if isinstance(o, Task) else type(o).__name__ for o in outcomes]
    if kind == "run":
        return await store.mark_running(args[0], args[1], args[2], now)
    if kind == "complete":
        return await store.complete(args[0], args[1], args[2], {"step": step}, now)
    if kind == "fail":
        return await store.fail(args[0], args[1], args[2], {"code": "x", "reason": "r"}, now)
    if kind == "requeue":
        return await store.requeue(args[0], args[1], args[2], "why", now)
    if kind == "cancel":
        return await store.cancel(args[0], now)
    assert kind == "expire"
    return await store.fail_expired(T0 + args[0])


async def outcome(store: Store, op: tuple[Any, ...], step: int) -> Any:
    try:
        return ("ok", await apply(store, op, step))
    except FogmeshError as exc:
        return ("error", type(exc).__name__)


async def snapshot(store: Store) -> Any:
    counts = await store.count_by_state()
    listed = await store.list_tasks(limit=100)
    for state, n in counts.items():
        assert n == sum(t.state is state for t in listed)
    return (
        counts,
        listed,
        [t.id for t in await store.pending_tasks()],
        [t.id for t in await store.pending_tasks(order="age")],
        [t.id for t in await store.leased_tasks()],
    )


async def run(sequence: list[tuple[Any, ...]], db: Path) -> None:
    memory = MemoryStore()
    sql = await SqlStore.open(f"sqlite:///{db}")
    try:
        for step, raw in enumerate(sequence):
            op = await resolve(memory, raw)
            expected = await outcome(memory, op, step)
            assert await outcome(sql, op, step) == expected, (step, op)
        assert await snapshot(sql) == await snapshot(memory)
        for t in await memory.list_tasks(limit=100):
            if t.state is TaskState.FAILED and t.error and t.error["code"] == "max_attempts":
                assert len(t.history) >= t.max_attempts
    finally:
        await sql.close()


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(setup, st.lists(ops, min_size=10, max_size=50))
def test_sqlite_store_behaves_like_the_memory_store(
    first: list[tuple[Any, ...]], sequence: list[tuple[Any, ...]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(first + sequence, Path(tmp) / "model.db"))
