"""What only the SQL store has: migrations, SQLite settings, group commit, several writers."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from fogmesh.config import load_settings
from fogmesh.errors import (
    ConfigError,
    IllegalTransition,
    InvalidRequest,
    MigrationError,
    StaleAttempt,
    StoreError,
)
from fogmesh.fog.tasks import Task, TaskState
from fogmesh.store import (
    DEFAULT_DB_NAME,
    MemoryStore,
    SqlStore,
    head_revision,
    normalise_url,
    open_store,
)
from fogmesh.store.base import SubmitKey
from fogmesh.store.schema import METADATA, task_attempts, tasks

MakeTask = Callable[..., Task]
T0 = 1_700_000_000.0


def engine_of(store: object) -> AsyncEngine:
    assert isinstance(store, SqlStore)
    return store._engine


async def revision_of(store: object) -> str | None:
    async with engine_of(store).connect() as conn:
        row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    return None if row is None else str(row[0])


# -- migrations -----------------------------------------------------------------------------


async def test_a_new_database_is_migrated_to_head_and_reopening_keeps_data(
    sql_backend: Any, make_task: MakeTask
) -> None:
    store = await sql_backend.open()
    assert await revision_of(store) == head_revision()
    task = make_task()
    await store.add_task(task)
    await store.close()
    again = await sql_backend.open()
    assert await revision_of(again) == head_revision()
    assert await again.get_task(task.id) == task


async def test_two_stores_opening_a_fresh_database_at_once_both_work(
    sql_backend: Any, make_task: MakeTask
) -> None:
    one, two = await asyncio.gather(sql_backend.open(), sql_backend.open())
    task = make_task()
    await one.add_task(task)
    assert await two.get_task(task.id) == task
    assert await revision_of(two) == head_revision()


async def test_the_migrations_build_exactly_the_schema_the_code_queries(
    sql_backend: Any,
) -> None:
    store = await sql_backend.open()

    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), METADATA))

    async with engine_of(store).connect() as conn:
        assert await conn.run_sync(diff) == []


def test_spent_tickets_move_from_the_old_map_into_their_table(tmp_path: Path) -> None:
    import json

    from alembic import command
    from sqlalchemy import create_engine

    from fogmesh.store.migrate import _config

    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0001")  # as a database written before 0002
        old = {"spent-a": 2_000_000_000.0, "spent-b": 2_000_000_100, "junk": "x"}
        conn.execute(
            text("INSERT INTO kv (key, value) VALUES (:k, :v)"),
            {"k": "security.spent_one_shot_tickets", "v": json.dumps(old)},
        )
    engine.dispose()

    async def check() -> None:
        store = await SqlStore.open(f"sqlite:///{path}")
        try:
            assert await store.spent_tickets(1_900_000_000.0) == {
                "spent-a": 2_000_000_000.0,
                "spent-b": 2_000_000_100.0,
            }
            assert await store.get_value("security.spent_one_shot_tickets") is None
        finally:
            await store.close()

    asyncio.run(check())


async def test_0003_gives_spent_tickets_a_holder_and_keys_a_table_and_downgrades_losing_no_spend(
    sql_backend: Any,
) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from fogmesh.store._sqlconn import make_engine
    from fogmesh.store.migrate import _config

    if sql_backend.kind == "sqlite":
        engine = make_engine(f"sqlite:///{sql_backend.path}")
    else:
        engine = make_engine(sql_backend.pg.url, schema=sql_backend.pg.name)

    def before_0003(conn: Connection) -> None:
        command.upgrade(_config(conn), "0002")  # as a database written before 0003
        conn.execute(
            text("INSERT INTO spent_tickets (ticket_id, expires_at) VALUES ('old', :e)"),
            {"e": 2_000_000_000.0},
        )

    def down_and_up(conn: Connection) -> None:
        command.downgrade(_config(conn), "0002")
        assert "idempotency_keys" not in inspect(conn).get_table_names()
        assert "holder" not in {c["name"] for c in inspect(conn).get_columns("spent_tickets")}
        spent = dict(conn.execute(text("SELECT ticket_id, expires_at FROM spent_tickets")).all())
        assert spent == {"old": 2_000_000_000.0, "new": 2_000_000_000.0}
        assert conn.execute(text("SELECT id FROM tasks")).scalars().all() == ["01TASK"]
        command.upgrade(_config(conn), "head")  # and up again

    try:
        async with engine.begin() as conn:
            await conn.run_sync(before_0003)
        store = await sql_backend.open()
        assert await revision_of(store) == "0003" == head_revision()
        assert await store.spent_tickets(1_900_000_000.0) == {"old": 2_000_000_000.0}
        assert await store.ticket_holders(1_900_000_000.0) == {}  # refused to everyone
        await store.spend_tickets({"new": 2_000_000_000.0}, T0, holders={"new": "dev-a"})
        task = Task(id="01TASK", type="inference", created_at=T0)
        await store.add_keyed_tasks([task], [SubmitKey("k", 2e9)], T0)
        await store.close()
        async with engine.begin() as conn:
            await conn.run_sync(down_and_up)
    finally:
        await engine.dispose()


async def test_a_database_from_a_newer_version_is_refused_untouched(
    sql_backend: Any, make_task: MakeTask
) -> None:
    store = await sql_backend.open()
    task = make_task()
    await store.add_task(task)
    async with engine_of(store).begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(MigrationError, match="newer"):
        await sql_backend.open()
    assert await revision_of(store) == "9999_future"
    assert await store.get_task(task.id) == task


async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        await open_store(path)


# -- SQLite settings ------------------------------------------------------------------------


@pytest.mark.parametrize(("sync", "level"), [("FULL", 2), ("NORMAL", 1)])
async def test_sqlite_runs_wal_with_foreign_keys_and_the_chosen_sync(
    tmp_path: Path, sync: str, level: int
) -> None:
    store = await SqlStore.open(f"sqlite:///{tmp_path / 'x.db'}", sqlite_synchronous=sync)  # type: ignore[arg-type]
    try:
        async with engine_of(store).connect() as conn:
            pragmas = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
    finally:
        await store.close()
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": level,
        "busy_timeout": 30_000,
    }


# -- group commit ---------------------------------------------------------------------------


async def test_concurrent_submits_share_commits(sql_backend: Any, make_task: MakeTask) -> None:
    store = await sql_backend.open()
    assert isinstance(store, SqlStore)
    tasks = [make_task() for _ in range(300)]
    await asyncio.gather(*(store.add_task(t) for t in tasks))
    commits, written = store.group_commit_stats
    assert written == 300
    assert commits < 300 // 2  # many submits per commit, not one each
    assert (await store.count_by_state())[TaskState.PENDING] == 300


async def test_one_bad_submit_does_not_fail_its_batch_neighbours(
    sql_backend: Any, make_task: MakeTask
) -> None:
    store = await sql_backend.open()
    taken = make_task()
    await store.add_task(taken)
    fresh = [make_task() for _ in range(50)]
    outcomes = await asyncio.gather(
        *(store.add_task(t) for t in fresh[:25]),
        store.add_task(taken),
        *(store.add_task(t) for t in fresh[25:]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[25], InvalidRequest)
    assert [o for i, o in enumerate(outcomes) if i != 25] == [None] * 50
    assert (await store.count_by_state())[TaskState.PENDING] == 51


async def test_without_group_commit_each_submit_is_its_own_commit(
    sql_backend: Any, make_task: MakeTask
) -> None:
    store = await sql_backend.open(group_commit=False)
    tasks = [make_task() for _ in range(20)]
    await asyncio.gather(*(store.add_task(t) for t in tasks))
    assert store.group_commit_stats == (0, 0)
    assert [t.id for t in await store.list_tasks()] == [t.id for t in tasks]


# -- several writers on one database --------------------------------------------------------


async def test_two_stores_racing_on_one_database_complete_each_task_once(
    sql_backend: Any, make_task: MakeTask
) -> None:
    """Two coordinators (separate engines, so separate connections and locks) race to place
    and complete the same tasks; the database alone must keep each completion unique."""
    one = await sql_backend.open()
    two = await sql_backend.open()
    tasks = [make_task() for _ in range(40)]
    await one.add_tasks(tasks)
    wins: dict[str, list[str]] = {t.id: [] for t in tasks}

    async def coordinator(store: SqlStore, name: str) -> None:
        for t in tasks:
            try:
                placed = await store.place(t.id, name, 0, T0)
                await store.complete(t.id, name, placed.attempt, name, T0)
                wins[t.id].append(name)
            except (StaleAttempt, IllegalTransition):
                pass

    await asyncio.gather(coordinator(one, "one"), coordinator(two, "two"))
    for t in tasks:
        assert len(wins[t.id]) == 1
        final = await two.get_task(t.id)
        assert final.state is TaskState.COMPLETED
        assert final.result == wins[t.id][0] == final.assigned_device
        assert [h.attempt for h in final.history] == [1]


async def test_a_batch_that_waited_for_another_writer_returns_that_writers_history(
    sql_backend: Any, make_task: MakeTask
) -> None:
    """Another coordinator re-places a task (new attempt row) and commits while a report for the
    new attempt waits for its lock: the returned task must include the attempt it wrote. (On
    PostgreSQL a locking read that waited returns the new version of the row it locked, but
    joined rows of other tables as its snapshot had them: the lock must come before the read.)"""
    store = await sql_backend.open()
    other = await sql_backend.open()
    task = make_task()
    await store.add_tasks([task])
    (placed,) = await store.place_many([(task.id, "dev-1", 0)], T0 + 1)
    assert isinstance(placed, Task)
    report: asyncio.Task[Task] | None = None
    async with other._write() as conn:
        await conn.execute(
            tasks.update().where(tasks.c.id == task.id).values(attempt=2, scheduled_at=T0 + 2)
        )
        await conn.execute(
            task_attempts.update()
            .where(task_attempts.c.task_id == task.id)
            .values(ended_at=T0 + 2, outcome="lost", reason="gone")
        )
        await conn.execute(
            task_attempts.insert().values(
                task_id=task.id, attempt=2, device_id="dev-1", placed_at=T0 + 2
            )
        )
        report = asyncio.create_task(store.complete(task.id, "dev-1", 2, "ok", T0 + 3))
        await asyncio.sleep(0.3)  # the report is now waiting for the row (or database) lock
        assert not report.done()
    done = await report
    assert done == await store.get_task(task.id)
    assert [(h.attempt, h.outcome) for h in done.history] == [(1, "lost"), (2, "completed")]


async def test_a_batch_whose_updates_miss_the_locked_read_is_undone(
    sql_backend: Any, make_task: MakeTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The returned tasks are built from the locked read; should the conditional UPDATEs ever
    match fewer rows than it promised, the batch fails whole (where the driver counts them)."""
    store = await sql_backend.open()
    if not store._engine.dialect.supports_sane_multi_rowcount:
        pytest.skip("the driver does not count the rows of an executemany")
    task, other = make_task(), make_task()
    await store.add_tasks([task, other])
    (placed,) = await store.place_many([(task.id, "dev-1", 0)], T0 + 1)
    assert isinstance(placed, Task)
    real = SqlStore._locked_tasks

    async def stale(self: SqlStore, conn: Any, ids: set[str]) -> dict[str, Task]:
        view = await real(self, conn, ids)
        return {**view, task.id: task}  # says pending, attempt 0: no longer true

    monkeypatch.setattr(SqlStore, "_locked_tasks", stale)
    with pytest.raises(StoreError, match="matched 1 of 2"):
        await store.place_many([(task.id, "dev-2", 0), (other.id, "dev-2", 0)], T0 + 2)
    monkeypatch.undo()
    assert await store.get_task(task.id) == placed
    assert (await store.get_task(other.id)).state is TaskState.PENDING


# -- open_store -----------------------------------------------------------------------------


async def test_open_store_defaults_to_sqlite_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_task: MakeTask
) -> None:
    monkeypatch.setenv("FOGMESH_HOME", str(tmp_path / "home"))
    assert load_settings().home == tmp_path / "home"
    store = await open_store()
    try:
        await store.add_task(make_task())
    finally:
        await store.close()
    path = tmp_path / "home" / DEFAULT_DB_NAME
    assert path.is_file()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM tasks").fetchone() == (1,)

    explicit = await open_store(None, tmp_path / "other")
    await explicit.close()
    assert (tmp_path / "other" / DEFAULT_DB_NAME).is_file()


async def test_open_store_understands_paths_urls_and_memory(tmp_path: Path) -> None:
    assert isinstance(await open_store("memory"), MemoryStore)
    by_path = await open_store(tmp_path / "a.db")
    by_url = await open_store(f"sqlite:///{tmp_path / 'b.db'}")
    for store in (by_path, by_url):
        assert isinstance(store, SqlStore)
        await store.close()
    assert (tmp_path / "a.db").is_file() and (tmp_path / "b.db").is_file()
    with pytest.raises(ConfigError):
        await open_store("mysql://root@localhost/x")
    with pytest.raises(ConfigError):
        await SqlStore.open(f"sqlite:///{tmp_path / 'c.db'}", schema="nope")


def test_urls_get_the_async_drivers() -> None:
    assert normalise_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("postgresql+asyncpg://u@h/db").drivername == "postgresql+asyncpg"
    with pytest.raises(ConfigError):
        normalise_url("not a url")
