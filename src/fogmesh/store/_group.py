"""Group commit: many concurrent submits share one transaction and one fsync.

Callers put their tasks on a queue and await a future. One writer coroutine takes everything
queued (up to ``max_batch`` tasks), writes it in one transaction and resolves every caller's
future only after the commit returned. There is no timer: while a commit is in flight new
submits pile up, so the batch grows with the load and a lone submit is written at once.

If a combined batch fails (say one caller's task id already exists), each caller's tasks are
retried in a transaction of their own, so one bad submit cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from fogmesh.fog.tasks import Task

from ._batch import QueuedWriter, next_batch

__all__ = ["GroupCommitter"]


class GroupCommitter(QueuedWriter[Sequence[Task], None]):
    def __init__(
        self, flush: Callable[[Sequence[Task]], Awaitable[None]], *, max_batch: int = 2000
    ) -> None:
        super().__init__("group-commit")
        self._flush = flush
        self._max_batch = max_batch
        self.batches = 0  # commits made (for benchmarks and tests)
        self.tasks = 0

    async def submit(self, tasks: Sequence[Task]) -> None:
        """Return once ``tasks`` are committed; raise what their commit raised."""
        await self._enqueue(tasks)

    async def _run(self) -> None:
        while True:
            batch, stop = await next_batch(self._queue, self._max_batch, lambda e: len(e[0]))
            if batch:
                await self._commit(batch)
            if stop:
                return

    async def _commit(self, batch: list[tuple[Sequence[Task], asyncio.Future[None]]]) -> None:
        # A caller that gave up (cancelled) before its batch started gets nothing written:
        # only acknowledged submits are promised to be durable.
        live = [(tasks, fut) for tasks, fut in batch if not fut.done()]
        if not live:
            return
        try:
            await self._flush([t for tasks, _ in live for t in tasks])
        except Exception as exc:
            if len(live) == 1:
                _settle(live[0][1], exc)
                return
            for tasks, fut in live:
                try:
                    await self._flush(tasks)
                except Exception as one_exc:
                    _settle(fut, one_exc)
                else:
                    self._count(len(tasks))
                    _settle(fut, None)
            return
        self._count(sum(len(tasks) for tasks, _ in live))
        for _, fut in live:
            _settle(fut, None)

    def _count(self, n: int) -> None:
        self.batches += 1
        self.tasks += n


def _settle(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)
