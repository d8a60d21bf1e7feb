"""SetupGate: a bounded number of handshake steps at once, registrations first, no leaks."""

from __future__ import annotations

import asyncio

import pytest

from fogmesh.server._admission import SetupGate


async def _step(gate: SetupGate, name: str, log: list[str], release: asyncio.Event) -> None:
    async with gate.handshake_step():
        log.append(name)
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_handshake_steps_beyond_the_limit_wait_in_arrival_order() -> None:
    gate = SetupGate(2)
    log: list[str] = []
    releases = {name: asyncio.Event() for name in "abcd"}
    tasks = [asyncio.create_task(_step(gate, n, log, releases[n])) for n in "abcd"]
    await _settle()
    assert log == ["a", "b"] and gate.running == 2 and gate.waited == 2
    releases["b"].set()
    await _settle()
    assert log == ["a", "b", "c"]
    releases["a"].set()
    await _settle()
    assert log == ["a", "b", "c", "d"]
    for event in releases.values():
        event.set()
    await asyncio.gather(*tasks)
    assert gate.running == 0


async def test_a_registration_never_waits_and_holds_handshakes_back() -> None:
    gate = SetupGate(1)
    log: list[str] = []
    go = asyncio.Event()
    with gate.registration():
        with gate.registration():  # over the limit: registrations still go
            assert gate.running == 2
        waiting = asyncio.create_task(_step(gate, "h", log, go))
        await _settle()
        assert log == []  # the handshake waits while the registration runs
    await _settle()
    assert log == ["h"]
    go.set()
    await waiting
    assert gate.running == 0


@pytest.mark.parametrize("when", ["waiting", "granted"])
async def test_a_cancelled_handshake_step_gives_its_place_back(when: str) -> None:
    gate = SetupGate(1)
    log: list[str] = []
    first, second, third = asyncio.Event(), asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_step(gate, "holder", log, first))
    await _settle()
    victim = asyncio.create_task(_step(gate, "victim", log, second))
    await _settle()
    if when == "granted":
        first.set()  # the place passes to the victim …
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    victim.cancel()  # … which is cancelled before (or while) it could use it
    with pytest.raises(asyncio.CancelledError):
        await victim
    first.set()
    await holder
    after = asyncio.create_task(_step(gate, "after", log, third))
    await _settle()
    assert log[-1] == "after" and gate.running == 1
    third.set()
    await after
    assert gate.running == 0


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SetupGate(0)
