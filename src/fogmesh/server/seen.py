"""A durable ``SeenStore`` for one-shot enrolment tickets, kept in the store's spent-ticket table.

``TicketVerifier`` calls ``remember`` synchronously, so the spent ids live in memory (loaded at
start) and ``persist()`` writes the new ones through before the enrolment is answered: the device
gets its agent ticket only after its join token's id is durable, so a token that enrolled a device
stays spent across a restart. Each enrolment writes only its own id (one row), and enrolments
arriving together share the store's commit, so a connect storm costs one small write per batch
rather than a rewrite of every id spent so far. One coordinator per store (as FogCoordinator
itself assumes).
"""

from __future__ import annotations

import asyncio
from typing import Final

from fogmesh.clock import Clock
from fogmesh.store import Store

__all__ = ["StoreSeenStore"]

# Forget expired ids from memory at most this often: the pass is O(ids), an enrolment is not.
PRUNE_EVERY_S: Final = 60.0


class StoreSeenStore:
    __slots__ = ("_clock", "_next_prune", "_spent", "_store", "_unwritten", "_writes")

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._spent: dict[str, float] = {}
        self._unwritten: dict[str, float] = {}  # remembered, not yet handed to a write
        self._writes: set[asyncio.Future[None]] = set()  # handed to the store, not yet durable
        self._next_prune = float("-inf")

    async def load(self) -> None:
        self._spent = await self._store.spent_tickets(self._clock.time())

    def remember(self, key: str, until: float) -> bool:
        now = self._clock.time()
        if now >= self._next_prune:
            self._spent = {k: v for k, v in self._spent.items() if v >= now}
            self._next_prune = now + PRUNE_EVERY_S
        if key in self._spent and self._spent[key] >= now:
            return False
        self._spent[key] = until
        self._unwritten[key] = until
        return True

    async def persist(self) -> None:
        """Return once every id remembered before this call is durable; raise if its write
        failed (the id stays spent in memory and is written again by the next call)."""
        waits: list[asyncio.Future[None]] = list(self._writes)
        if self._unwritten:
            batch, self._unwritten = self._unwritten, {}
            write: asyncio.Future[None] = asyncio.ensure_future(
                self._store.spend_tickets(batch, self._clock.time())
            )
            self._writes.add(write)
            write.add_done_callback(lambda done: self._written(done, batch))
            waits.append(write)
        for write in waits:
            # Shielded: a caller that gives up must not cancel a write others wait for.
            await asyncio.shield(write)

    def _written(self, write: asyncio.Future[None], batch: dict[str, float]) -> None:
        self._writes.discard(write)
        if write.cancelled() or write.exception() is not None:
            self._unwritten = {**batch, **self._unwritten}

    def is_spent(self, key: str) -> bool:
        """Whether ``key`` was used (or revoked) and is still remembered."""
        until = self._spent.get(key)
        return until is not None and until >= self._clock.time()

    def __len__(self) -> int:
        return len(self._spent)
