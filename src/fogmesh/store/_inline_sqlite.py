"""An aiosqlite connection that runs statements on the event loop and only waits off it.

aiosqlite sends every call — cursor, execute, fetch, close — to its worker thread and back. A
coordinator transaction of a few statements then costs a dozen thread hand-offs, and under load
the event loop and the worker trade the GIL on each one: measured, that was about half of the
coordinator's CPU per task. Yet a statement on a WAL database inside a transaction this process
already holds does no I/O that can wait: it works on pages in memory. Two calls can block:

* ``COMMIT`` writes, fsyncs under ``synchronous=FULL`` and may checkpoint: it runs inline
  while the median of the connection's last ``COMMITS_KEPT`` inline commits is under
  ``INLINE_COMMIT_S`` (0.5 ms; a fast disk: 0.12–0.3 ms on the development machines in late
  2026, 4 ms on an earlier one), and otherwise goes to the worker thread, which waits without
  the GIL. A median, because a few slow commits (a checkpoint, a busy disk for a moment) must
  not send the next ones away: on the thread, under load, a commit waits for the GIL behind the
  busy loop and then for the loop to come back to it, ten times as long as the sync, holding
  the write lock. For the same reason only inline commits are timed. While commits go to the
  thread, one every ``PROBE_EVERY_S`` runs inline to measure the disk again; a fast probe
  brings the next ones back (and one slow inline commit after it sends them away again).
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
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, Final

import aiosqlite

__all__ = ["InlineConnection", "inline_connect"]

# Statements that may wait on another process or on the disk.
_BLOCKING_PREFIXES = ("COMMIT", "END", "VACUUM", "PRAGMA WAL_CHECKPOINT")


# COMMITs run inline while the median of the recent inline ones took less than this: on a disk
# that syncs in a tenth of a millisecond the hop to the worker thread and back — and, under
# load, the wait for the event loop to come back to the transaction while it holds the write
# lock every other writer queues for — costs far more than the sync itself.
INLINE_COMMIT_S: Final = 0.0005
COMMITS_KEPT: Final = 16
# While commits go to the worker thread, run one inline this often to see whether the disk is
# fast again (on a slow disk that blocks the loop for one commit, a few times a second).
PROBE_EVERY_S: Final = 0.25


class InlineConnection(aiosqlite.Connection):
    _busy_ms: int | None = None  # the connection's busy_timeout, read on first BEGIN
    _probe_at: float = 0.0  # monotonic time of the next inline probe while off the loop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._commits: deque[float] = deque(maxlen=COMMITS_KEPT)  # recent inline, seconds

    @property
    def commits_fast(self) -> bool:
        """Whether the recent inline commits (median) were fast enough to keep inline."""
        recent = sorted(self._commits)
        return bool(recent) and recent[len(recent) // 2] < INLINE_COMMIT_S

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
        if not self._running or not self._connection:
            return await self._off_loop(fn, *args, **kwargs)
        fast = self.commits_fast
        t0 = time.perf_counter()
        if not fast and t0 < self._probe_at:
            return await self._off_loop(fn, *args, **kwargs)
        try:
            return fn(*args, **kwargs)
        finally:
            took = time.perf_counter() - t0
            if not fast:  # a probe starts the record afresh
                self._commits.clear()
            self._commits.append(took)
            if not self.commits_fast:
                self._probe_at = t0 + took + PROBE_EVERY_S

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
