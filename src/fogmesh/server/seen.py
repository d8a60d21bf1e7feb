"""A durable ``SeenStore`` for one-shot tickets, kept in the store's spent-ticket table.

``TicketVerifier`` calls ``remember`` synchronously, so the spent ids live in memory (loaded at
start) and ``persist()`` writes the new ones through before the use is answered: a device gets
its agent ticket only after its join token's id is durable, and a one-shot REST ticket's request
is served only after its id is (``server.auth``), so a spent ticket stays spent across a restart.
Each use writes only its own id (one row), and uses arriving together share the store's commit,
so a connect storm costs one small write per batch rather than a rewrite of every id spent so
far. One coordinator per store (as FogCoordinator itself assumes).

A join token is spent in the name of the device that enrolled with it (its id, derived from its
identity key): if the ``Enrolled`` reply is lost, that device may present the token again and
enrol; any other device is refused. Tickets spent without a holder (REST) are refused to all.
"""

from __future__ import annotations

import asyncio
from typing import Final

from fogmesh.clock import Clock
from fogmesh.store import Store

__all__ = ["StoreSeenStore"]

# Forget expired ids from memory at most this often: the pass is O(ids), an enrolment is not.
PRUNE_EVERY_S: Final = 60.0

_Batch = tuple[dict[str, float], dict[str, str]]  # spent id → expiry, spent id → holder


class StoreSeenStore:
    __slots__ = (
        "_clock",
        "_holders",
        "_next_prune",
        "_spent",
        "_store",
        "_unwritten",
        "_unwritten_holders",
        "_writes",
    )

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._spent: dict[str, float] = {}
        self._holders: dict[str, str] = {}  # spent id → the device that spent it
        self._unwritten: dict[str, float] = {}  # remembered, not yet handed to a write
        self._unwritten_holders: dict[str, str] = {}
        self._writes: set[asyncio.Future[None]] = set()  # handed to the store, not yet durable
        self._next_prune = float("-inf")

    async def load(self) -> None:
        now = self._clock.time()
        self._spent = await self._store.spent_tickets(now)
        self._holders = await self._store.ticket_holders(now)

    def remember(self, key: str, until: float, holder: str | None = None) -> bool:
        now = self._clock.time()
        if now >= self._next_prune:
            self._spent = {k: v for k, v in self._spent.items() if v >= now}
            self._holders = {k: v for k, v in self._holders.items() if k in self._spent}
            self._next_prune = now + PRUNE_EVERY_S
        if key in self._spent and self._spent[key] >= now:
            return holder is not None and self._holders.get(key) == holder
        self._spent[key] = until
        self._unwritten[key] = until
        if holder is not None:
            self._holders[key] = holder
            self._unwritten_holders[key] = holder
        else:
            self._holders.pop(key, None)  # an expired spend's holder must not carry over
        return True

    async def persist(self) -> None:
        """Return once every id remembered before this call is durable; raise if its write
        failed (the id stays spent in memory and is written again by the next call)."""
        waits: list[asyncio.Future[None]] = list(self._writes)
        if self._unwritten:
            batch: _Batch = (self._unwritten, self._unwritten_holders)
            self._unwritten, self._unwritten_holders = {}, {}
            write: asyncio.Future[None] = asyncio.ensure_future(
                self._store.spend_tickets(batch[0], self._clock.time(), holders=batch[1])
            )
            self._writes.add(write)
            write.add_done_callback(lambda done: self._written(done, batch))
            waits.append(write)
        for write in waits:
            # Shielded: a caller that gives up must not cancel a write others wait for.
            await asyncio.shield(write)

    def _written(self, write: asyncio.Future[None], batch: _Batch) -> None:
        self._writes.discard(write)
        if write.cancelled() or write.exception() is not None:
            self._unwritten = {**batch[0], **self._unwritten}
            self._unwritten_holders = {**batch[1], **self._unwritten_holders}

    def is_spent(self, key: str) -> bool:
        """Whether ``key`` was used (or revoked) and is still remembered."""
        until = self._spent.get(key)
        return until is not None and until >= self._clock.time()

    def __len__(self) -> int:
        return len(self._spent)
