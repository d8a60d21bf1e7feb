"""Group commit for single-item writes: concurrent calls share one transaction and one fsync.

``GroupCommitter`` (``_group.py``) does this for submits; ``Batcher`` does it for writes whose
items succeed or fail one by one — a task's "started" or "completed" report, a heartbeat. The
flush function gets every queued item in arrival order and returns one outcome per item: a
value, or the ``FogmeshError`` that single call would have raised. Items are applied in order,
so a task's "started" and "completed" in one batch land in the order they were reported.

A lone call is written at once; while a commit is in flight new calls queue, so the batch grows
with the load. When commits are quick that alone leaves batches of one or two under a steady
stream (each report commits before the next arrives), so a ``Batcher`` may *linger*: if its
last commit ended less than ``linger`` seconds ago — the stream is busy — it waits out the rest
of ``linger`` before taking the next batch (Kafka's ``linger.ms``). An idle store still writes a
lone call at once. If the flush itself fails (the database is gone), every caller in that batch
gets that error and nothing of the batch is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from fogmesh.errors import FogmeshError, StoreError

__all__ = ["Batcher", "QueuedWriter", "next_batch"]

ItemT = TypeVar("ItemT")
OutT = TypeVar("OutT")

Flush = Callable[[Sequence[ItemT]], Awaitable[Sequence["OutT | FogmeshError"]]]


QueuedT = TypeVar("QueuedT")
EntryT = TypeVar("EntryT")
ResultT = TypeVar("ResultT")


async def next_batch(
    queue: asyncio.Queue[QueuedT | None], limit: int, weight: Callable[[QueuedT], int]
) -> tuple[list[QueuedT], bool]:
    """Wait for one entry, then take whatever else is queued until the batch weighs ``limit``.
    Returns the batch and whether the stop marker (``None``) was reached."""
    first = await queue.get()
    if first is None:
        return [], True
    batch = [first]
    size = weight(first)
    while size < limit:
        try:
            entry = queue.get_nowait()
        except asyncio.QueueEmpty:
            return batch, False
        if entry is None:
            return batch, True
        batch.append(entry)
        size += weight(entry)
    return batch, False


class QueuedWriter(Generic[EntryT, ResultT]):
    """A queue of (entry, caller's future) and the one writer coroutine that drains it (started
    by the first call, stopped by ``close``); subclasses write the batches in ``_run``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: asyncio.Queue[tuple[EntryT, asyncio.Future[ResultT]] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    async def _enqueue(self, entry: EntryT) -> ResultT:
        if self._closed:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()
        if self._writer is None:
            self._writer = loop.create_task(self._run(), name=f"fogmesh-store-{self._name}")
        future: asyncio.Future[ResultT] = loop.create_future()
        self._queue.put_nowait((entry, future))
        return await future

    async def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        self._closed = True
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
            self._writer = None

    async def _run(self) -> None:
        raise NotImplementedError


class Batcher(QueuedWriter[ItemT, OutT]):
    def __init__(
        self,
        flush: Flush[ItemT, OutT],
        *,
        max_batch: int = 2000,
        name: str = "batch",
        linger: float = 0.0,
        weight: Callable[[ItemT], int] | None = None,
    ) -> None:
        super().__init__(name)
        self._flush = flush
        self._max_batch = max_batch
        self._linger = linger
        # How much of ``max_batch`` one item uses (default 1; a keyed submit: its tasks).
        self._weight = weight
        self._last_end = float("-inf")  # loop time the last commit ended
        self.batches = 0  # commits made (benchmarks and tests read these)
        self.items = 0

    async def submit(self, item: ItemT) -> OutT:
        """Return ``item``'s outcome once its batch is committed; raise its error."""
        return await self._enqueue(item)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        weigh = self._weight
        entry_weight: Callable[[tuple[ItemT, asyncio.Future[OutT]]], int] = (
            (lambda _: 1) if weigh is None else (lambda entry: weigh(entry[0]))
        )
        while True:
            if self._linger > 0:
                busy_until = self._last_end + self._linger
                if loop.time() < busy_until and self._queue.qsize() < self._max_batch:
                    await asyncio.sleep(busy_until - loop.time())
            batch, stop = await next_batch(self._queue, self._max_batch, entry_weight)
            if batch:
                await self._commit(batch)
                self._last_end = loop.time()
            if stop:
                return

    async def _commit(self, batch: list[tuple[ItemT, asyncio.Future[OutT]]]) -> None:
        # Unlike a submit, a report is worth writing even if its caller stopped waiting: the
        # device did the work. So cancelled callers' items are written too.
        try:
            outcomes = await self._flush([item for item, _ in batch])
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        self.batches += 1
        self.items += len(batch)
        for (_, fut), outcome in zip(batch, outcomes, strict=True):
            if fut.done():
                continue
            if isinstance(outcome, FogmeshError):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)
