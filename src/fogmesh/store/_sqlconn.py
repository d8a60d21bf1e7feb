"""Connections for ``SqlStore``: URLs, engines, SQLite settings, read and write transactions.

* SQLite: WAL, ``busy_timeout``, foreign keys on. Writes begin with ``BEGIN IMMEDIATE`` (a
  deferred transaction that later needs the write lock gets SQLITE_BUSY at once, which
  ``busy_timeout`` cannot help) and, inside one process, queue on an ``asyncio.Lock`` instead of
  polling the file lock. Reads are single statements on their own pooled connections; under WAL
  they never wait for the writer.
* PostgreSQL: READ COMMITTED; writers run in parallel.
* Connections are closed (returned to the pool) inline. SQLAlchemy's ``async with
  engine.connect()`` closes in a task of its own that the caller waits for: two more turns of
  the event loop for every read and write, and under load — when a turn takes milliseconds —
  SQLite's write lock stayed held through them while every other writer queued. A close that is
  cancelled part-way is finished by the pool, which discards that connection.

Database errors are translated here: a constraint violation → ``Conflict``, anything else →
``StoreError``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from fogmesh.errors import ConfigError, StoreError

from ._inline_sqlite import inline_connect

__all__ = ["Conflict", "SqlBase", "SqliteSync", "make_engine", "normalise_url"]

SqliteSync = Literal["FULL", "NORMAL"]


class Conflict(StoreError):
    """A unique or foreign key constraint refused a write."""


def normalise_url(url: str | URL) -> URL:
    """Accept plain ``sqlite:`` / ``postgresql:`` URLs and pick the async driver."""
    try:
        u = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {exc}", field="store") from exc
    backend = u.get_backend_name()
    if backend == "sqlite":
        return u.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return u.set(drivername="postgresql+asyncpg")
    raise ConfigError(f"unsupported database {backend!r}: use sqlite or postgresql", field="store")


def make_engine(
    url: str | URL,
    *,
    schema: str | None = None,
    sqlite_synchronous: SqliteSync = "FULL",
    busy_timeout_s: float = 30.0,
) -> AsyncEngine:
    u = normalise_url(url)
    if u.get_backend_name() == "sqlite":
        if schema is not None:
            raise ConfigError("schema is for PostgreSQL only", field="schema")
        if sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ConfigError("sqlite_synchronous must be FULL or NORMAL", field="store")
        # The dialect works out sqlite3's arguments from the URL; the engine must exist first.
        sqlite_args: list[tuple[Any, Any]] = []

        def connect() -> Any:
            cargs, cparams = sqlite_args[0]
            return inline_connect(*cargs, **cparams)

        engine = create_async_engine(
            u, pool_size=5, max_overflow=5, pool_timeout=60, async_creator=connect
        )
        sync = engine.sync_engine
        cargs, cparams = sync.dialect.create_connect_args(sync.url)
        sqlite_args.append((cargs, cparams))
        _configure_sqlite(engine, sqlite_synchronous, busy_timeout_s)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(
        u, pool_size=5, max_overflow=10, pool_timeout=60, connect_args=connect_args
    )


class SqlBase:
    """Engine, write serialisation and the two transaction kinds every SQL method uses."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._sqlite = self._dialect == "sqlite"
        self._write_engine = engine.execution_options(fogmesh_write=True)
        # SQLite has one writer anyway; queueing here is fairer and cheaper than busy-waiting
        # on the file lock. PostgreSQL writers run in parallel.
        self._write_lock = asyncio.Lock() if self._sqlite else None
        self._insert = sqlite_insert if self._sqlite else pg_insert
        self._closed = False

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def url(self) -> URL:
        return self._engine.url

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._closed:
            raise StoreError("store is closed")
        lock = self._write_lock
        if lock is not None:
            await lock.acquire()
        held = lock
        try:
            conn = await self._write_engine.connect()
            try:
                async with conn.begin():
                    yield conn
            finally:
                # The transaction is over: the next writer need not wait for the pool.
                if held is not None:
                    held.release()
                    held = None
                await _close(conn)
        except sa_exc.IntegrityError as exc:
            raise Conflict(f"constraint violated: {exc.orig}") from exc
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database write failed: {exc}") from exc
        finally:
            if held is not None:
                held.release()

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if self._closed:
            raise StoreError("store is closed")
        try:
            async with _connection(self._engine) as conn:
                yield conn
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database read failed: {exc}") from exc


@contextlib.asynccontextmanager
async def _connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection, closed inline (see the module's docstring)."""
    conn = await engine.connect()
    try:
        yield conn
    finally:
        await _close(conn)


async def _close(conn: AsyncConnection) -> None:
    # A failure to hand the connection back must neither fail a transaction that committed nor
    # hide the error of one that did not; the pool discards a connection it could not reset.
    with contextlib.suppress(sa_exc.SQLAlchemyError, OSError):
        await conn.close()


def _configure_sqlite(engine: AsyncEngine, synchronous: SqliteSync, busy_timeout_s: float) -> None:
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module so that writes can say BEGIN IMMEDIATE and
        # DDL is transactional (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute(f"PRAGMA synchronous = {synchronous}")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Reads are single statements (a statement is its own snapshot), so they need no BEGIN;
        # leaving it out saves two round trips to aiosqlite's thread per read.
        if conn.get_execution_options().get("fogmesh_write", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
