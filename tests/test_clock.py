from __future__ import annotations

import pytest

from fogmesh.clock import Clock, ManualClock, WallClock


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(WallClock(), Clock)
    assert isinstance(ManualClock(), Clock)


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=100.0)
    assert (clock.time(), clock.monotonic()) == (100.0, 0.0)
    clock.advance(2.5)
    assert (clock.time(), clock.monotonic()) == (102.5, 2.5)


def test_manual_clock_refuses_to_go_backwards() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_wall_jump_leaves_monotonic_alone() -> None:
    clock = ManualClock(start=100.0)
    clock.advance(1)
    clock.set_time(50.0)
    assert (clock.time(), clock.monotonic()) == (50.0, 1.0)


def test_wall_clock_monotonic_does_not_decrease() -> None:
    clock = WallClock()
    readings = [clock.monotonic() for _ in range(1000)]
    assert readings == sorted(readings)
