"""SQLite statements run on the event loop; only waits (a held write lock, COMMIT) leave it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from fogmesh.fog.tasks import Task
from fogmesh.store import SqlStore, _inline_sqlite
from fogmesh.store._inline_sqlite import (
    COMMITS_KEPT,
    INLINE_COMMIT_S,
    InlineConnection,
    inline_connect,
)

MakeTask = Callable[..., Task]


async def test_statements_run_on_the_loop(tmp_path: Path) -> None:
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


class _SteppedClock:
    """``time.perf_counter`` for the module under test: every reading is ``step`` after the
    one before, so a COMMIT (timed by two readings) appears to take ``step``."""

    def __init__(self) -> None:
        self.now = 100.0
        self.step = 0.0

    def perf_counter(self) -> float:
        now = self.now
        self.now += self.step
        return now


async def test_commit_runs_inline_while_recent_inline_commits_were_fast_and_probes_when_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _SteppedClock()
    monkeypatch.setattr(_inline_sqlite, "time", clock)
    conn = await inline_connect(str(tmp_path / "x.db"), isolation_level=None)
    try:
        await conn.execute("CREATE TABLE t (v INTEGER)")
        where: list[str] = []
        off_loop = conn._off_loop

        async def recorded(fn: Callable[..., object], *args: object) -> object:
            where.append("thread")
            return await off_loop(fn, *args)

        conn._off_loop = recorded  # type: ignore[method-assign]
        commits = 0

        async def commit(takes: float) -> str:
            nonlocal commits
            clock.step = takes
            where.clear()
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute("INSERT INTO t VALUES (1)")
            await conn.commit()
            commits += 1
            return "thread" if where else "inline"

        fast, slow = INLINE_COMMIT_S / 5, INLINE_COMMIT_S * 20
        assert not conn.commits_fast
        assert await commit(fast) == "inline"  # nothing measured yet: a probe, inline
        assert conn.commits_fast
        for _ in range(COMMITS_KEPT - 1):
            assert await commit(fast) == "inline"
        for _ in range(COMMITS_KEPT // 2 - 1):  # a few slow ones (checkpoints) …
            assert await commit(slow) == "inline"
        assert conn.commits_fast  # … do not move the median
        assert await commit(slow) == "inline"  # half of the recent ones slow: it moves
        assert not conn.commits_fast
        kept = list(conn._commits)
        assert await commit(fast) == "thread"  # on the thread …
        assert await commit(slow) == "thread"
        assert list(conn._commits) == kept  # … and not timed there (GIL waits would count)
        clock.now = conn._probe_at  # the next probe is due
        assert await commit(fast) == "inline"  # it runs inline, starts the record afresh …
        assert conn.commits_fast and len(conn._commits) == 1
        assert await commit(fast) == "inline"  # … and the next ones stay inline
        assert await commit(slow) == "inline"  # [fast, fast, slow]: still fast
        assert await commit(slow) == "inline"  # [fast, fast, slow, slow]: now slow
        assert await commit(fast) == "thread"
        clock.now = conn._probe_at
        assert await commit(slow) == "inline"  # a slow probe …
        assert await commit(fast) == "thread"  # … keeps commits on the thread till the next
        async with conn.execute("SELECT count(*) FROM t") as cur:
            assert (await cur.fetchone())[0] == commits
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
