"""Sliding-window anti-replay (RFC 6479 style) and the bounded, time-windowed seen-cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogmesh.clock import ManualClock
from fogmesh.errors import ReplayError
from fogmesh.security.replay import COUNTER_LIMIT, ReplayWindow, SeenCache

# -- ReplayWindow -----------------------------------------------------------------------------


def test_default_window_is_at_least_1024() -> None:
    window = ReplayWindow()
    assert window.window >= 1024
    assert window.window % 64 == 0
    assert ReplayWindow(5000).window >= 5000


def test_in_order_counters_are_all_accepted() -> None:
    window = ReplayWindow()
    for counter in range(10_000):
        window.update(counter)
    assert window.highest == 9_999


def test_duplicates_are_refused() -> None:
    window = ReplayWindow()
    for counter in (0, 1, 5, 3):
        window.update(counter)
    for counter in (0, 1, 3, 5):
        with pytest.raises(ReplayError, match="already seen"):
            window.update(counter)
    window.update(2)  # the gap is still open
    window.update(4)


def test_check_does_not_mark() -> None:
    window = ReplayWindow()
    window.check(7)
    window.check(7)  # checking twice is fine: only update() records
    window.update(7)
    with pytest.raises(ReplayError):
        window.check(7)


def test_window_edges() -> None:
    window = ReplayWindow(1024)
    size = window.window
    top = 10 * size + 17
    window.update(top)
    window.update(top - size + 1)  # the oldest counter still inside the window
    with pytest.raises(ReplayError, match="too old"):
        window.check(top - size)  # one below it
    with pytest.raises(ReplayError, match="already seen"):
        window.check(top - size + 1)


@pytest.mark.parametrize("jump", [1, 63, 64, 65, 1023, 1024, 4096, 10**9, 2**62])
def test_far_jumps_ahead_clear_stale_bits(jump: int) -> None:
    window = ReplayWindow(1024)
    for counter in range(200):
        window.update(counter)
    top = 199 + jump
    window.update(top)
    # Counters that share ring slots with old ones must not look like duplicates.
    for back in range(1, min(jump, window.window)):
        if top - back > 199:
            window.check(top - back)
    for old in range(200):
        if top - old < window.window:
            with pytest.raises(ReplayError, match="already seen"):
                window.check(old)
        else:
            with pytest.raises(ReplayError, match="too old"):
                window.check(old)


def test_very_old_counters_are_refused() -> None:
    window = ReplayWindow()
    window.update(10**12)
    for old in (0, 1, 10**12 - window.window):
        with pytest.raises(ReplayError, match="too old"):
            window.update(old)


def test_counter_exhaustion() -> None:
    window = ReplayWindow()
    window.update(COUNTER_LIMIT - 1)
    with pytest.raises(ReplayError, match="exhausted"):
        window.update(COUNTER_LIMIT)
    small = ReplayWindow(limit=100)
    small.update(99)
    with pytest.raises(ReplayError, match="exhausted"):
        small.update(100)


def test_negative_counter_and_bad_window() -> None:
    with pytest.raises(ReplayError):
        ReplayWindow().update(-1)
    with pytest.raises(ValueError):
        ReplayWindow(0)


@settings(max_examples=300, deadline=None)
@given(
    counters=st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=3000),
            st.integers(min_value=0, max_value=2**64),
        ),
        max_size=300,
    ),
    size=st.sampled_from([64, 128, 1024]),
)
def test_matches_a_reference_model(counters: list[int], size: int) -> None:
    window = ReplayWindow(size)
    seen: set[int] = set()
    highest = -1
    for counter in counters:
        fresh = counter not in seen
        inside = counter > highest or highest - counter < window.window
        expected = fresh and inside and counter < COUNTER_LIMIT
        try:
            window.update(counter)
            accepted = True
        except ReplayError:
            accepted = False
        assert accepted == expected, (counter, highest)
        if accepted:
            seen.add(counter)
            highest = max(highest, counter)


# -- SeenCache --------------------------------------------------------------------------------


def test_seen_cache_refuses_repeats_within_the_window(clock: ManualClock) -> None:
    cache = SeenCache(clock, ttl=600)
    now = clock.time()
    cache.check_and_add(b"msg-1", now - 10)
    cache.check_and_add(b"msg-2", now - 10)
    with pytest.raises(ReplayError, match="already seen"):
        cache.check_and_add(b"msg-1", now - 10)
    clock.advance(500)
    with pytest.raises(ReplayError, match="already seen"):
        cache.check_and_add(b"msg-1", now - 10)


def test_seen_cache_time_window_edges(clock: ManualClock) -> None:
    cache = SeenCache(clock, ttl=600, future_skew=30)
    now = clock.time()
    cache.check_and_add(b"oldest", now - 600)  # exactly ttl old: still judged
    with pytest.raises(ReplayError, match="too old"):
        cache.check_and_add(b"older", now - 600.5)
    cache.check_and_add(b"ahead", now + 30)
    with pytest.raises(ReplayError, match="future"):
        cache.check_and_add(b"further", now + 31)


def test_expired_ids_are_forgotten_but_their_messages_stay_refused(clock: ManualClock) -> None:
    cache = SeenCache(clock, ttl=60)
    sent = clock.time()
    cache.check_and_add(b"m", sent)
    clock.advance(61)
    with pytest.raises(ReplayError, match="too old"):
        cache.check_and_add(b"m", sent)
    assert b"m" not in cache and len(cache) == 0


def test_seen_cache_is_bounded_without_reopening_replays(clock: ManualClock) -> None:
    cache = SeenCache(clock, ttl=600, max_entries=3)
    now = clock.time()
    for i in range(3):
        cache.check_and_add(b"m%d" % i, now - 100 + i)
    cache.check_and_add(b"m3", now)  # evicts m0 (the oldest) and raises the floor to its time
    assert len(cache) == 3 and b"m0" not in cache
    assert cache.floor == now - 100
    with pytest.raises(ReplayError, match="too old"):
        cache.check_and_add(b"m0", now - 100)  # the forgotten id is still refused
    with pytest.raises(ReplayError, match="too old"):
        cache.check_and_add(b"new-but-old", now - 99.5)  # older than all kept: cannot judge
    cache.check_and_add(b"m4", now)
    assert len(cache) == 3


def test_seen_cache_arguments(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        SeenCache(clock, ttl=0)
    with pytest.raises(ValueError):
        SeenCache(clock, max_entries=0)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=15),  # message id
            st.integers(min_value=-20, max_value=5),  # sent_at offset from now
            st.integers(min_value=0, max_value=10),  # clock advance before delivery
        ),
        max_size=80,
    ),
    capacity=st.integers(min_value=1, max_value=6),
)
def test_no_message_is_ever_accepted_twice(
    events: list[tuple[int, int, int]], capacity: int
) -> None:
    clock = ManualClock()
    cache = SeenCache(clock, ttl=10, max_entries=capacity, future_skew=5)
    sent_times: dict[int, float] = {}
    accepted: set[tuple[int, float]] = set()
    for ident, offset, advance in events:
        clock.advance(advance)
        # A given message always carries the time it was first sent with.
        sent = sent_times.setdefault(ident, clock.time() + offset)
        try:
            cache.check_and_add(b"%d" % ident, sent)
        except ReplayError:
            continue
        assert (ident, sent) not in accepted
        accepted.add((ident, sent))
        assert len(cache) <= capacity
