"""How much connection set-up the coordinator does at once, with registrations first.

In a connect storm (a fleet reconnecting after a restart, a batch of new devices) every new
connection brings CPU work: a Noise handshake, two signature checks, a ticket to sign. Taken all
at once, that work fills the event loop, and a device that has already proved who it is waits
behind strangers for its registration to be answered. ``SetupGate`` bounds the handshake work in
progress: a handshake step waits while ``limit`` set-up steps are running, and a registration
never waits but counts, so handshakes yield to it.

Only the coordinator's own work holds a place. A handshake step takes one when the client's
message has arrived and gives it back before waiting for the next, so a slow or silent client (a
phone on a poor link, or someone holding connections open) keeps nobody else waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterator

__all__ = ["SetupGate"]


class SetupGate:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.running = 0  # set-up steps in progress (places granted to waiters included)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.waited = 0  # handshake steps that had to wait (for metrics and tests)

    @contextlib.asynccontextmanager
    async def handshake_step(self) -> AsyncIterator[None]:
        """One step of a handshake: waits (in arrival order) for a place."""
        if self.running >= self.limit or self._waiters:
            self.waited += 1
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(granted)
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._release()  # granted, then cancelled before it could run
                else:
                    with contextlib.suppress(ValueError):  # already passed over
                        self._waiters.remove(granted)
                raise
        else:
            self.running += 1
        try:
            yield
        finally:
            self._release()

    @contextlib.contextmanager
    def registration(self) -> Iterator[None]:
        """A registration: never waits, and holds handshakes back while it runs."""
        self.running += 1
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self.running -= 1
        while self._waiters and self.running < self.limit:
            granted = self._waiters.popleft()
            if not granted.done():
                self.running += 1  # the place passes to the waiter directly: no barging
                granted.set_result(None)
