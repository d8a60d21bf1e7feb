"""StoreSeenStore: spent one-shot ids (and who spent them) survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_helpers import Api

from fogmesh.clock import ManualClock
from fogmesh.errors import StoreError
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


async def test_a_one_shot_ticket_whose_spend_cannot_be_written_is_refused_and_stays_spent(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = api.service
    store = service.coordinator.store

    def one_shot() -> dict[str, str]:
        ticket = service.issuer.issue(
            subject="script", audience=service.keys.audience, scopes=("read",), ttl=600,
            one_shot=True,
        )  # fmt: skip
        return {"Authorization": f"Bearer {ticket}"}

    bearer = one_shot()

    async def disk_full(*_: object, **__: object) -> None:
        raise StoreError("database write failed: disk full")

    monkeypatch.setattr(store, "spend_tickets", disk_full)
    r = await api.client.get("/v1/status", headers=bearer)
    assert r.status_code != 200 and r.json()["error"]["code"] == "store_unavailable"  # not served
    monkeypatch.undo()
    r = await api.client.get("/v1/status", headers=bearer)
    assert r.status_code == 401 and r.json()["error"]["code"] == "replay"  # fails closed
    r = await api.client.get("/v1/status", headers=api.admin)  # a plain ticket: no store write
    assert r.status_code == 200 and await store.spent_tickets(service.clock.time()) == {}
    # The failed spend is written with the next one-shot use, before that one is served.
    r = await api.client.get("/v1/status", headers=one_shot())
    assert r.status_code == 200 and len(await store.spent_tickets(service.clock.time())) == 2
