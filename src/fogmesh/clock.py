"""Injected time.

Pure decision logic never reads the wall clock; callers pass ``now`` in. Adapters hold a
``Clock``: ``WallClock`` in production, ``ManualClock`` in tests, the simulator's clock in ``sim``.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "WallClock"]


@runtime_checkable
class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the Unix epoch (for timestamps that are stored or sent)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations and deadlines)."""
        ...


class WallClock:
    """The real clock."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "WallClock()"


class ManualClock:
    """A clock that moves only when told to; both readings advance together."""

    __slots__ = ("_monotonic", "_time")

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._time = float(start)
        self._monotonic = 0.0

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a ManualClock cannot go backwards")
        self._time += seconds
        self._monotonic += seconds

    def set_time(self, epoch_seconds: float) -> None:
        """Jump the wall reading (as NTP might); the monotonic reading is untouched."""
        self._time = float(epoch_seconds)

    def __repr__(self) -> str:
        return f"ManualClock(time={self._time!r}, monotonic={self._monotonic!r})"
