"""Replay protection for links that number their messages, and for store-and-forward messages.

``ReplayWindow`` is the RFC 6479 sliding window: a ring of 64-bit words, so moving the window
forward clears whole words instead of shifting a long bitmap, and a far jump costs at most one
pass over the ring. Check a counter *before* authenticating the message (cheap rejection), and
``update`` only *after* it authenticated, so forged packets cannot move the window.

``SeenCache`` is for messages that arrive late and out of order (mesh store-and-forward): it
remembers message ids for a time window and refuses anything older than what it can still vouch
for. It is bounded: when full it forgets the oldest id and raises its floor to that id's time, so
forgetting never reopens a replay (the price is refusing some genuine but old messages).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Final

from fogmesh.clock import Clock
from fogmesh.errors import ReplayError

__all__ = ["ReplayWindow", "SeenCache"]

_WORD: Final = 64
_WORD_SHIFT: Final = 6
# Counters are 64-bit; the last value is reserved so "exhausted" is distinguishable from "valid".
COUNTER_LIMIT: Final = (1 << 64) - 1


class ReplayWindow:
    """Accepts each counter at most once, and none older than ``window`` below the highest seen.

    The effective window is ``(words - 1) * 64`` where ``words`` is the smallest power of two
    giving at least the requested size (the ring keeps one spare word, per RFC 6479).
    """

    __slots__ = ("_highest", "_limit", "_mask", "_ring", "window")

    def __init__(self, window: int = 1024, *, limit: int = COUNTER_LIMIT) -> None:
        if window < 1:
            raise ValueError("window must be positive")
        words = 2
        while (words - 1) * _WORD < window:
            words *= 2
        self._ring = [0] * words
        self._mask = words - 1
        self.window: int = (words - 1) * _WORD
        self._highest = -1
        self._limit = limit

    @property
    def highest(self) -> int:
        """The highest accepted counter, -1 before the first."""
        return self._highest

    def check(self, counter: int) -> None:
        """Raise ReplayError if ``counter`` must be refused; changes nothing."""
        if counter < 0:
            raise ReplayError("negative counter")
        if counter >= self._limit:
            raise ReplayError("counter exhausted; the link must rekey or reconnect")
        highest = self._highest
        if counter > highest:
            return
        if highest - counter >= self.window:
            raise ReplayError("counter too old (outside the replay window)")
        word = self._ring[(counter >> _WORD_SHIFT) & self._mask]
        if word >> (counter & (_WORD - 1)) & 1:
            raise ReplayError("counter already seen (replay)")

    def update(self, counter: int) -> None:
        """Mark ``counter`` seen (call after the message authenticated); re-checks first."""
        self.check(counter)
        ring, mask = self._ring, self._mask
        index = counter >> _WORD_SHIFT
        if counter > self._highest:
            current = self._highest >> _WORD_SHIFT
            # Clear the words the window slides over; a jump past the whole ring clears it all.
            for step in range(1, min(index - current, len(ring)) + 1):
                ring[(current + step) & mask] = 0
            self._highest = counter
        ring[index & mask] |= 1 << (counter & (_WORD - 1))

    def __repr__(self) -> str:
        return f"ReplayWindow(window={self.window}, highest={self._highest})"


class SeenCache:
    """Message ids seen within the last ``ttl`` seconds (by the sender's timestamp), bounded."""

    __slots__ = ("_clock", "_expiry", "_floor", "_future", "_heap", "_max", "_seq", "_ttl")

    def __init__(
        self,
        clock: Clock,
        *,
        ttl: float = 600.0,
        max_entries: int = 65_536,
        future_skew: float = 30.0,
    ) -> None:
        if ttl <= 0 or max_entries < 1 or future_skew < 0:
            raise ValueError("ttl and max_entries must be positive, future_skew >= 0")
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._future = future_skew
        self._floor = float("-inf")
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()

    def check_and_add(self, message_id: bytes, sent_at: float) -> None:
        """Accept a message once; ReplayError if it is a repeat or too old/new to judge."""
        now = self._clock.time()
        self._prune(now - self._ttl)
        if sent_at < now - self._ttl or sent_at <= self._floor:
            raise ReplayError("message too old to check for replay")
        if sent_at > now + self._future:
            raise ReplayError("message timestamp is in the future")
        key = bytes(message_id)
        if key in self._expiry:
            raise ReplayError("message already seen (replay)")
        if len(self._expiry) >= self._max:
            if sent_at <= self._heap[0][0]:
                # Storing it would mean forgetting a newer id; refusing keeps the floor honest.
                raise ReplayError("message too old to check for replay (cache full)")
            evicted_at, _, evicted = heapq.heappop(self._heap)
            del self._expiry[evicted]
            self._floor = max(self._floor, evicted_at)
        self._expiry[key] = sent_at
        heapq.heappush(self._heap, (sent_at, next(self._seq), key))

    def _prune(self, oldest: float) -> None:
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] < oldest:
            _, _, key = heapq.heappop(heap)
            del expiry[key]

    @property
    def floor(self) -> float:
        """Messages at or before this time are refused because their ids were forgotten."""
        return self._floor

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._expiry
