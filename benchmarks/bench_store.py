"""Durable submit throughput of the store, with and without group commit.

Many coroutines submit one task at a time (``add_task``), as API requests would; a submit counts
once it returned, i.e. once it is committed. The baseline is the same load with group commit off
(one transaction and one commit per task), measured in the same run.

Prints one JSON object per line; PostgreSQL runs when ``FOGMESH_TEST_PG_URL`` is set (in a
throw-away schema), otherwise its lines say ``skipped``.

    .venv/bin/python benchmarks/bench_store.py [--tasks N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from fogmesh.fog.tasks import Task, TaskIdFactory, TaskPriority, TaskResources, TaskType
from fogmesh.store import Placement, SqlStore

T0 = 1_700_000_000.0


def make_tasks(n: int) -> list[Task]:
    ids = TaskIdFactory()
    return [
        Task(
            id=ids.new(T0 + i / 1000),
            type=TaskType.INFERENCE,
            priority=TaskPriority.NORMAL,
            resources=TaskResources(cpu_cores=0.5, memory_mb=128, estimated_duration=2.0),
            created_at=T0 + i / 1000,
        )
        for i in range(n)
    ]


async def submit_all(store: SqlStore, tasks: list[Task], concurrency: int) -> float:
    """Seconds to submit ``tasks`` from ``concurrency`` coroutines, one task per call."""
    queue = iter(tasks)

    async def submitter() -> None:
        for task in queue:
            await store.add_task(task)

    start = time.perf_counter()
    await asyncio.gather(*(submitter() for _ in range(concurrency)))
    return time.perf_counter() - start


@asynccontextmanager
async def sqlite_store(**options: Any) -> AsyncIterator[SqlStore]:
    with tempfile.TemporaryDirectory(prefix="fogmesh-bench-") as tmp:
        store = await SqlStore.open(f"sqlite:///{Path(tmp) / 'bench.db'}", **options)
        try:
            yield store
        finally:
            await store.close()


@asynccontextmanager
async def pg_store(url: str, **options: Any) -> AsyncIterator[SqlStore]:
    schema = f"fm_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        store = await SqlStore.open(url, schema=schema, **options)
        try:
            yield store
        finally:
            await store.close()
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def submit_case(
    name: str,
    opener: Callable[..., Any],
    n: int,
    baseline_n: int,
    concurrency: int,
    **options: Any,
) -> dict[str, Any]:
    async with opener(group_commit=True, **options) as store:
        seconds = await submit_all(store, make_tasks(n), concurrency)
        commits, written = store.group_commit_stats
    async with opener(group_commit=False, **options) as store:
        base_seconds = await submit_all(store, make_tasks(baseline_n), concurrency)
    value = n / seconds
    baseline = baseline_n / base_seconds
    return {
        "bench": name,
        "value": round(value),
        "unit": "tasks/s",
        "baseline": round(baseline),
        "ratio": round(value / baseline, 2),
        "tasks": n,
        "concurrency": concurrency,
        "commits": commits,
        "tasks_per_commit": round(written / max(commits, 1), 1),
    }


async def bulk_case(
    name: str, opener: Callable[..., Any], n: int, **options: Any
) -> dict[str, Any]:
    """``add_tasks`` in chunks of 1,000 vs one ``add_task`` after another (no concurrency)."""
    tasks = make_tasks(n)
    async with opener(**options) as store:
        start = time.perf_counter()
        for i in range(0, n, 1000):
            await store.add_tasks(tasks[i : i + 1000])
        value = n / (time.perf_counter() - start)
    one_by_one = make_tasks(min(n, 2000))
    async with opener(**options) as store:
        start = time.perf_counter()
        for task in one_by_one:
            await store.add_task(task)
        baseline = len(one_by_one) / (time.perf_counter() - start)
    return {
        "bench": name,
        "value": round(value),
        "unit": "tasks/s",
        "baseline": round(baseline),
        "ratio": round(value / baseline, 2),
    }


async def place_case(name: str, opener: Callable[..., Any], n: int) -> dict[str, Any]:
    """A scheduler plan of ``n`` placements: ``place_many`` vs one ``place`` per task."""
    async with opener() as store:
        tasks = make_tasks(n)
        await store.add_tasks(tasks)
        plan = [Placement(t.id, f"dev-{i % 50}", 0) for i, t in enumerate(tasks)]
        start = time.perf_counter()
        await store.place_many(plan, T0)
        value = n / (time.perf_counter() - start)
    single = min(n, 1000)
    async with opener() as store:
        tasks = make_tasks(single)
        await store.add_tasks(tasks)
        start = time.perf_counter()
        for i, t in enumerate(tasks):
            await store.place(t.id, f"dev-{i % 50}", 0, T0)
        baseline = single / (time.perf_counter() - start)
    return {
        "bench": name,
        "value": round(value),
        "unit": "placements/s",
        "baseline": round(baseline),
        "ratio": round(value / baseline, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000, help="submits per case")
    parser.add_argument("--baseline-tasks", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    def emit(record: dict[str, Any]) -> None:
        print(json.dumps(record), flush=True)

    emit(
        await submit_case(
            "store_submit_sqlite_group_commit",
            sqlite_store,
            args.tasks,
            args.baseline_tasks,
            args.concurrency,
            sqlite_synchronous="FULL",
        )
    )
    emit(
        await submit_case(
            "store_submit_sqlite_group_commit_sync_normal",
            sqlite_store,
            args.tasks,
            args.baseline_tasks,
            args.concurrency,
            sqlite_synchronous="NORMAL",
        )
    )
    emit(await bulk_case("store_submit_sqlite_bulk", sqlite_store, args.tasks))
    emit(await place_case("store_place_many_sqlite", sqlite_store, 5_000))

    pg_url = os.environ.get("FOGMESH_TEST_PG_URL")
    pg_names = ("store_submit_postgresql_group_commit", "store_place_many_postgresql")
    if not pg_url:
        for name in pg_names:
            emit({"bench": name, "skipped": "FOGMESH_TEST_PG_URL is not set"})
        return

    def pg(**options: Any) -> Any:
        return pg_store(pg_url, **options)

    emit(await submit_case(pg_names[0], pg, args.tasks, args.baseline_tasks, args.concurrency))
    emit(await place_case(pg_names[1], pg, 5_000))


if __name__ == "__main__":
    asyncio.run(main())
