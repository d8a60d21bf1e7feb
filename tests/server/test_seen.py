"""StoreSeenStore: spent one-shot ids (and who spent them) survive a restart."""

from __future__ import annotations

from pathlib import Path

from fogmesh.clock import ManualClock
from fogmesh.server.seen import StoreSeenStore
from fogmesh.store import SqlStore

T0 = 1_700_000_000.0


async def test_a_holder_may_spend_its_ticket_again_after_a_restart_nobody_else_may(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'fog.db'}"
    clock = ManualClock(T0)
    store = await SqlStore.open(url)
    seen = StoreSeenStore(store, clock)
    await seen.load()
    assert seen.remember("join-1", T0 + 600, "dev-a")
    assert seen.remember("rest-1", T0 + 600)
    await seen.persist()
    await store.close()

    store = await SqlStore.open(url)  # a new coordinator process on the same database
    try:
        seen = StoreSeenStore(store, clock)
        await seen.load()
        assert seen.remember("join-1", T0 + 600, "dev-a")
        assert not seen.remember("join-1", T0 + 600, "dev-b")
        assert not seen.remember("join-1", T0 + 600)
        assert not seen.remember("rest-1", T0 + 600)
        assert not seen.remember("rest-1", T0 + 600, "dev-a")
        clock.advance(601)  # expired: forgotten, with its holder
        assert seen.remember("join-1", T0 + 1200, "dev-b")
    finally:
        await store.close()
