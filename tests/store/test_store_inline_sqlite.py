"""SQLite statements run on the event loop; only waits (a held write lock, COMMIT) leave it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from fogmesh.fog.tasks import Task
from fogmesh.store import SqlStore
from fogmesh.store._inline_sqlite import INLINE_COMMIT_S, InlineConnection, inline_connect

MakeTask = Callable[..., Task]


async def test_statements_run_inline_and_commit_off_the_loop(tmp_path: Path) -> None:
    conn = await inline_connect(str(tmp_path / "x.db"), isolation_level=None)
    try:
        loop_thread = threading.get_ident()
        seen: dict[str, int] = {}
        await conn.create_function(
            "where_am_i", 1, lambda tag: seen.__setitem__(tag, threading.get_ident()) or 0
        )
        await conn.execute("CREATE TABLE t (v INTEGER)")
        await conn.execute("BEGIN IMMEDIATE")
        await conn.execute("INSERT INTO t VALUES (where_am_i('insert'))")
        await conn.commit()
        async with conn.execute("SELECT where_am_i('select'), count(*) FROM t") as cur:
            assert (await cur.fetchone())[1] == 1
        assert seen == {"insert": loop_thread, "select": loop_thread}
    finally:
        await conn.close()


async def test_commit_runs_inline_only_while_recent_commits_were_fast(tmp_path: Path) -> None:
    conn = await inline_connect(str(tmp_path / "x.db"), isolation_level=None)
    try:
        await conn.execute("CREATE TABLE t (v INTEGER)")
        where: list[str] = []
        off_loop = conn._off_loop

        async def recorded(fn: Callable[..., object], *args: object) -> object:
            where.append("thread")
            return await off_loop(fn, *args)

        conn._off_loop = recorded  # type: ignore[method-assign]

        async def one_commit() -> None:
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute("INSERT INTO t VALUES (1)")
            where.append("commit")
            await conn.commit()

        await one_commit()  # nothing measured yet: off the loop, and timed there
        assert where == ["commit", "thread"]
        assert conn._commit_s < 1.0  # the average moved toward what it measured
        conn._commit_s = INLINE_COMMIT_S / 10  # as after a run of fast syncs
        where.clear()
        await one_commit()
        assert where == ["commit"]  # inline
        conn._commit_s = INLINE_COMMIT_S * 10  # as after a slow sync or a checkpoint
        where.clear()
        await one_commit()
        assert where == ["commit", "thread"]
        async with conn.execute("SELECT count(*) FROM t") as cur:
            assert (await cur.fetchone())[0] == 3
    finally:
        await conn.close()


async def test_a_write_lock_held_by_another_process_is_waited_for_off_the_loop(
    tmp_path: Path, make_task: MakeTask
) -> None:
    path = tmp_path / "fog.db"
    store = await SqlStore.open(f"sqlite:///{path}")
    try:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(ticker())
        task = make_task()
        write = asyncio.create_task(store.add_task(task))
        await asyncio.sleep(0.3)
        assert not write.done()  # waiting for the lock …
        assert ticks >= 10  # … without stalling the event loop
        other.execute("COMMIT")
        await asyncio.wait_for(write, 10)
        assert (await store.get_task(task.id)).id == task.id
        beat.cancel()
        other.close()
    finally:
        await store.close()


def test_inline_connections_are_aiosqlite_connections() -> None:
    # SQLAlchemy's aiosqlite dialect drives them exactly as its own.
    assert issubclass(InlineConnection, __import__("aiosqlite").Connection)
