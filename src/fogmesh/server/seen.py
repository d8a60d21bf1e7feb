"""A durable ``SeenStore`` for one-shot enrolment tickets, kept in the store's ``kv`` table.

``TicketVerifier`` calls ``remember`` synchronously, so the spent ids live in memory (loaded at
start) and ``persist()`` writes them through before the enrolment is answered: the device gets
its agent ticket only after the spent id is durable, so a token that enrolled a device stays
spent across a restart. One coordinator per store (as FogCoordinator itself assumes).
"""

from __future__ import annotations

import asyncio
from typing import Final

from fogmesh.clock import Clock
from fogmesh.store import Store

__all__ = ["StoreSeenStore"]

KEY: Final = "security.spent_one_shot_tickets"


class StoreSeenStore:
    __slots__ = ("_clock", "_lock", "_spent", "_store")

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._spent: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        value = await self._store.get_value(KEY)
        if isinstance(value, dict):
            self._spent = {str(k): float(v) for k, v in value.items() if isinstance(v, int | float)}

    def remember(self, key: str, until: float) -> bool:
        now = self._clock.time()
        if key in self._spent and self._spent[key] >= now:
            return False
        self._spent[key] = until
        return True

    async def persist(self) -> None:
        # One writer at a time: each write carries the whole (pruned) map, so two enrolments
        # persisting at once cannot drop each other's id.
        async with self._lock:
            now = self._clock.time()
            self._spent = {k: v for k, v in self._spent.items() if v >= now}
            await self._store.set_value(KEY, dict(self._spent))

    def __len__(self) -> int:
        return len(self._spent)
