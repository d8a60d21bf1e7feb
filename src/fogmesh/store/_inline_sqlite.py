"""An aiosqlite connection that runs statements on the event loop and only waits off it.

aiosqlite sends every call — cursor, execute, fetch, close — to its worker thread and back. A
coordinator transaction of a few statements then costs a dozen thread hand-offs, and under load
the event loop and the worker trade the GIL on each one: measured, that was about half of the
coordinator's CPU per task. Yet a statement on a WAL database inside a transaction this process
already holds does no I/O that can wait: it works on pages in memory. Two calls can block:

* ``COMMIT`` writes, fsyncs under ``synchronous=FULL`` and may checkpoint: it goes to the
  worker thread, which waits without the GIL — unless the recent commits took under
  ``INLINE_COMMIT_S`` (0.5 ms) on average (a fast disk: 0.12 ms on the development machine in
  late 2026, 4 ms on the one before), when it runs inline. Each commit is timed either way, so
  a disk that slows down (or a checkpoint) sends the next ones back to the thread.
* ``BEGIN IMMEDIATE`` waits up to ``busy_timeout`` if another process holds the write lock (an
  embedded ``EdgeManager`` or a CLI command on the same file). It is tried inline with the
  timeout at zero, which almost always succeeds at once; only if the lock is taken does it go to
  the worker thread to wait there with the connection's real timeout.

Everything else runs inline, in the caller's thread.

Connections are never shared between coroutines (SQLAlchemy's pool hands each to one at a time)
and every call is awaited, so the worker and the loop never touch one connection at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Final

import aiosqlite

__all__ = ["InlineConnection", "inline_connect"]

# Statements that may wait on another process or on the disk.
_BLOCKING_PREFIXES = ("COMMIT", "END", "VACUUM", "PRAGMA WAL_CHECKPOINT")


# A COMMIT that took less than this (a moving average of the last ones) runs inline: on a disk
# that syncs in a tenth of a millisecond the hop to the worker thread and back — and, under
# load, the wait for the event loop to come back to the transaction while it holds the write
# lock every other writer queues for — costs far more than the sync itself.
INLINE_COMMIT_S: Final = 0.0005


class InlineConnection(aiosqlite.Connection):
    _busy_ms: int | None = None  # the connection's busy_timeout, read on first BEGIN
    _commit_s: float = 1.0  # moving average of COMMIT's duration: off the loop until measured

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if _is_commit(self, fn, args):
            return await self._commit(fn, *args, **kwargs)
        if _may_block(self, fn, args):
            return await self._off_loop(fn, *args, **kwargs)
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if args and isinstance(args[0], str) and args[0].lstrip()[:5].upper() == "BEGIN":
            return await self._begin(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def _off_loop(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    async def _commit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def timed() -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took = time.perf_counter() - t0
                self._commit_s += 0.2 * (took - self._commit_s)

        if self._commit_s < INLINE_COMMIT_S and self._running and self._connection:
            return timed()
        return await self._off_loop(timed)

    async def _begin(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raw = self._conn
        if self._busy_ms is None:
            self._busy_ms = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                raise
        finally:
            raw.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        return await self._off_loop(fn, *args, **kwargs)  # another process writes: wait there


def _is_commit(conn: InlineConnection, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    raw = conn._connection
    if raw is None:
        return False
    if fn == raw.commit:
        return True
    return bool(args and isinstance(args[0], str) and args[0].lstrip()[:6].upper() == "COMMIT")


def _may_block(conn: InlineConnection, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    raw = conn._connection
    if raw is None:
        return True  # connecting or closed: aiosqlite's own path
    if fn == raw.commit or fn == raw.close:
        return True
    if args and isinstance(args[0], str):
        head = args[0].lstrip()[:32].upper()
        return head.startswith(_BLOCKING_PREFIXES)
    return False


def inline_connect(database: str, **kwargs: Any) -> InlineConnection:
    """Like ``aiosqlite.connect``; the connection is made usable from the loop's thread."""
    kwargs["check_same_thread"] = False
    conn = InlineConnection(partial(sqlite3.connect, database, **kwargs), iter_chunk_size=64)
    # As SQLAlchemy does for aiosqlite's own connections: a forgotten connection must not keep
    # the interpreter alive at exit.
    conn._thread.daemon = True
    return conn
