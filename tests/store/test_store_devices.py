"""Store contract, devices, clusters, coordinator values and batch placement."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fogmesh.devices.model import (
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
    PlatformThermal,
)
from fogmesh.errors import (
    DeviceNotFound,
    IllegalTransition,
    InvalidRequest,
    StaleAttempt,
    TaskNotFound,
)
from fogmesh.fog.tasks import Task, TaskState
from fogmesh.store import ClusterRecord, DeviceStatus, Placement, Store

MakeProfile = Callable[..., DeviceProfile]
MakeTask = Callable[..., Task]
T0 = 1_700_000_000.0


# -- devices --------------------------------------------------------------------------------


async def test_register_then_get_gives_back_the_typed_profile(
    store: Store, make_profile: MakeProfile
) -> None:
    phone = make_profile(
        "phone-1",
        device_type=DeviceType.SMARTPHONE,
        capabilities=DeviceCapabilities(
            cpu_cores_logical=8, has_battery=True, supported_transports=("ble", "wifi")
        ),
        platform_thermal=PlatformThermal("android", 2),
        network_type=NetworkType.CELLULAR,
        metered=True,
        battery_percent=41.5,
        timestamp=T0,
    )
    rec = await store.upsert_device(phone, T0, labels={"site": "home"})
    assert (rec.device_id, rec.device_type, rec.status) == (
        "phone-1",
        DeviceType.SMARTPHONE,
        DeviceStatus.READY,
    )
    assert (rec.registered_at, rec.last_heartbeat, rec.labels, rec.models) == (
        T0,
        T0,
        {"site": "home"},
        (),
    )
    got = await store.get_device("phone-1")
    assert got == rec
    assert got.device_profile() == phone


async def test_unknown_devices_are_device_not_found(store: Store) -> None:
    calls = [
        store.get_device("ghost"),
        store.heartbeat("ghost", T0),
        store.set_device_status("ghost", DeviceStatus.DRAINING),
        store.remove_device("ghost"),
        store.add_model("ghost", "m", T0),
        store.remove_model("ghost", "m"),
    ]
    for call in calls:
        with pytest.raises(DeviceNotFound):
            await call


async def test_heartbeat_updates_time_and_profile(store: Store, make_profile: MakeProfile) -> None:
    await store.upsert_device(make_profile("d"), T0)
    rec = await store.heartbeat("d", T0 + 5)
    assert rec.last_heartbeat == T0 + 5
    hot = make_profile("d", cpu_temp_c=81.0, battery_percent=12.0)
    rec = await store.heartbeat("d", T0 + 10, hot)
    assert rec.device_profile() == hot
    assert rec.registered_at == T0
    with pytest.raises(InvalidRequest):
        await store.heartbeat("d", T0 + 11, make_profile("other"))
    assert (await store.get_device("d")).last_heartbeat == T0 + 10


async def test_note_heartbeat_writes_like_heartbeat_without_a_record(
    store: Store, make_profile: MakeProfile
) -> None:
    await store.upsert_device(make_profile("d"), T0)
    await store.set_device_status("d", DeviceStatus.LOST)
    hot = make_profile("d", cpu_temp_c=81.0, battery_percent=12.0)
    beats = [store.note_heartbeat("d", T0 + 10, hot), store.heartbeat("d", T0 + 9)]
    answers = await asyncio.gather(*beats)  # one batch on SQL: one wants its record, one not
    assert answers[0] is None and answers[1].last_heartbeat == T0 + 9
    await store.note_heartbeat("d", T0 + 12)
    rec = await store.get_device("d")
    assert rec.last_heartbeat == T0 + 12 and rec.status is DeviceStatus.READY
    assert rec.device_profile() == hot
    with pytest.raises(DeviceNotFound):
        await store.note_heartbeat("nobody", T0 + 13)
    with pytest.raises(InvalidRequest):
        await store.note_heartbeat("d", T0 + 14, make_profile("other"))
    assert (await store.get_device("d")).last_heartbeat == T0 + 12


async def test_lost_devices_come_back_when_they_speak_but_draining_stays(
    store: Store, make_profile: MakeProfile
) -> None:
    for name, at in (("old", T0), ("fresh", T0 + 20), ("drain", T0), ("off", T0)):
        await store.upsert_device(make_profile(name), at)
    await store.set_device_status("drain", DeviceStatus.DRAINING)
    await store.set_device_status("off", DeviceStatus.OFFLINE)
    # heartbeat interval 5 s × 3 = 15 s before "now" = T0 + 25
    assert await store.mark_lost(T0 + 10) == ["drain", "old"]
    assert await store.mark_lost(T0 + 10) == []
    assert [d.device_id for d in await store.list_devices(DeviceStatus.LOST)] == ["drain", "old"]
    assert (await store.get_device("off")).status is DeviceStatus.OFFLINE
    assert (await store.heartbeat("old", T0 + 30)).status is DeviceStatus.READY
    assert (await store.upsert_device(make_profile("off"), T0 + 30)).status is DeviceStatus.READY
    await store.set_device_status("drain", DeviceStatus.DRAINING)
    assert (await store.heartbeat("drain", T0 + 30)).status is DeviceStatus.DRAINING
    assert (
        await store.upsert_device(make_profile("drain"), T0 + 30)
    ).status is DeviceStatus.DRAINING


async def test_labels_are_kept_unless_given(store: Store, make_profile: MakeProfile) -> None:
    await store.upsert_device(make_profile("d"), T0, labels={"site": "home"})
    assert (await store.upsert_device(make_profile("d"), T0 + 1)).labels == {"site": "home"}
    rec = await store.upsert_device(make_profile("d"), T0 + 2, labels={"site": "office"})
    assert rec.labels == {"site": "office"}
    with pytest.raises(InvalidRequest):
        await store.upsert_device(make_profile("d"), T0, labels={"n": 1})  # type: ignore[dict-item]


async def test_list_and_remove_devices_with_their_models(
    store: Store, make_profile: MakeProfile
) -> None:
    for name in ("c", "a", "b"):
        await store.upsert_device(make_profile(name), T0)
    await store.add_model("a", "resnet-int8", T0)
    await store.add_model("a", "bert-tiny", T0)
    await store.add_model("a", "bert-tiny", T0 + 1)  # idempotent
    await store.add_model("b", "bert-tiny", T0)
    listed = await store.list_devices()
    assert [(d.device_id, d.models) for d in listed] == [
        ("a", ("bert-tiny", "resnet-int8")),
        ("b", ("bert-tiny",)),
        ("c", ()),
    ]
    await store.remove_model("a", "resnet-int8")
    await store.remove_model("a", "never-deployed")
    assert (await store.get_device("a")).models == ("bert-tiny",)
    await store.remove_device("a")
    with pytest.raises(DeviceNotFound):
        await store.get_device("a")
    await store.upsert_device(make_profile("a"), T0 + 5)
    assert (await store.get_device("a")).models == ()  # models went with the device
    assert [d.device_id for d in await store.list_devices()] == ["a", "b", "c"]


async def test_bad_device_input_is_refused(store: Store, make_profile: MakeProfile) -> None:
    with pytest.raises(InvalidRequest):
        await store.upsert_device(make_profile(""), T0)
    with pytest.raises(InvalidRequest):
        await store.upsert_device("not a profile", T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        await store.upsert_device(make_profile("toaster", device_type="toaster"), T0)
    await store.upsert_device(make_profile("d"), T0)
    with pytest.raises(InvalidRequest):
        await store.add_model("d", "", T0)
    assert [d.device_id for d in await store.list_devices()] == ["d"]


# -- batch placement -----------------------------------------------------------------------


async def test_place_many_places_what_it_can_and_explains_the_rest(
    store: Store, make_task: MakeTask
) -> None:
    a, b, c, d = [make_task() for _ in range(4)]
    await store.add_tasks([a, b, c, d])
    await store.place(c.id, "x", 0, T0)
    await store.cancel(d.id, T0)
    outcomes = await store.place_many(
        [
            Placement(a.id, "laptop", 0),
            Placement(b.id, "phone", 0),
            Placement(a.id, "pi", 0),  # same task twice in one plan: second is stale
            Placement(c.id, "pi", 0),  # someone placed it already
            Placement(d.id, "pi", 0),  # cancelled
            Placement("missing", "pi", 0),
        ],
        T0 + 1,
    )
    placed_a, placed_b = outcomes[0], outcomes[1]
    assert isinstance(placed_a, Task) and isinstance(placed_b, Task)
    assert (placed_a.assigned_device, placed_a.attempt, placed_a.state) == (
        "laptop",
        1,
        TaskState.SCHEDULED,
    )
    assert placed_b.history[-1].device_id == "phone"
    assert [type(o) for o in outcomes[2:]] == [
        StaleAttempt,
        StaleAttempt,
        IllegalTransition,
        TaskNotFound,
    ]
    assert await store.get_task(a.id) == placed_a
    with pytest.raises(InvalidRequest):
        await store.place_many([Placement(b.id, "", 1)], T0)
    assert await store.place_many([], T0) == []


# -- clusters and coordinator values ------------------------------------------------------


async def test_clusters_round_trip_and_replace(store: Store) -> None:
    first = [
        ClusterRecord(cluster_id="home-0", members=("a", "b", "c"), head="a", term=1),
        ClusterRecord(cluster_id="home-1", members=("d", "e"), head=None, term=0),
    ]
    await store.save_clusters(first, T0)
    assert await store.load_clusters() == first
    second = [ClusterRecord(cluster_id="home-0", members=("a", "b"), head="b", term=2)]
    await store.save_clusters(second, T0 + 1)
    assert await store.load_clusters() == second


async def test_cluster_terms_never_go_back_and_one_head_per_term(store: Store) -> None:
    current = [ClusterRecord(cluster_id="c", members=("a", "b"), head="a", term=3)]
    await store.save_clusters(current, T0)
    for bad in (
        ClusterRecord(cluster_id="c", members=("a", "b"), head="a", term=2),
        ClusterRecord(cluster_id="c", members=("a", "b"), head="b", term=3),
    ):
        with pytest.raises(StaleAttempt):
            await store.save_clusters([bad], T0 + 1)
    with pytest.raises(InvalidRequest):
        await store.save_clusters(
            [ClusterRecord(cluster_id="c", members=("a",), head="z", term=4)], T0
        )
    assert await store.load_clusters() == current


async def test_coordinator_values(store: Store) -> None:
    assert await store.get_value("leader") is None
    await store.set_value("leader", {"id": "coord-1", "term": 4})
    assert await store.get_value("leader") == {"id": "coord-1", "term": 4}
    await store.set_value("leader", [1, 2])
    assert await store.get_value("leader") == [1, 2]
    with pytest.raises(InvalidRequest):
        await store.set_value("", 1)


async def test_spent_tickets_are_kept_until_they_expire(store: Store) -> None:
    await store.spend_tickets({}, T0)  # nothing to spend: only forgets expired ones
    assert await store.spent_tickets(T0) == {}
    await store.spend_tickets({"t1": T0 + 10, "t2": T0 + 100}, T0)
    await store.spend_tickets({"t3": T0 + 50}, T0 + 1)
    assert await store.spent_tickets(T0 + 1) == {"t1": T0 + 10, "t2": T0 + 100, "t3": T0 + 50}
    assert await store.spent_tickets(T0 + 60) == {"t2": T0 + 100}  # expired ones are not spent
    await store.spend_tickets({"t4": T0 + 200}, T0 + 60)  # and a later write forgets them
    assert await store.spent_tickets(T0) == {"t2": T0 + 100, "t4": T0 + 200}


@pytest.mark.parametrize(
    "bad",
    [{"": T0}, {"x" * 257: T0}, {"t": float("nan")}, {"t": "soon"}, {"t": True}, ["t"]],
)
async def test_bad_spent_tickets_are_refused_and_nothing_is_stored(
    store: Store, bad: object
) -> None:
    spent: Any = {"good": T0 + 10, **bad} if isinstance(bad, dict) else bad
    with pytest.raises(InvalidRequest):
        await store.spend_tickets(spent, T0)
    assert await store.spent_tickets(T0) == {}


async def test_concurrent_spends_share_commits_and_are_all_durable(sql_backend: Any) -> None:
    store = await sql_backend.open()
    await asyncio.gather(*(store.spend_tickets({f"t{i}": T0 + 100}, T0) for i in range(50)))
    assert store._joins.batches < 50  # enrolments arriving together share a commit
    await store.close()
    again = await sql_backend.open()
    assert await again.spent_tickets(T0) == {f"t{i}": T0 + 100 for i in range(50)}


async def test_a_spent_tickets_holder_is_kept_until_it_expires(store: Store) -> None:
    await store.spend_tickets({"t1": T0 + 10, "t2": T0 + 100}, T0, holders={"t1": "dev-a"})
    assert await store.ticket_holders(T0) == {"t1": "dev-a"}  # t2 has none: refused to all
    # The first spend decides: a later holder (or a later lack of one) changes nothing.
    await store.spend_tickets({"t1": T0 + 20, "t2": T0 + 100}, T0, holders={"t1": "dev-b"})
    await store.spend_tickets({"t2": T0 + 100}, T0, holders={"t2": "dev-c"})
    assert await store.ticket_holders(T0) == {"t1": "dev-a"}
    assert await store.spent_tickets(T0) == {"t1": T0 + 20, "t2": T0 + 100}
    assert await store.ticket_holders(T0 + 50) == {}  # expired with its ticket
    await store.spend_tickets({"t3": T0 + 200}, T0 + 50, holders={"t3": "dev-d"})
    assert await store.ticket_holders(T0) == {"t3": "dev-d"}


@pytest.mark.parametrize("holders", [{"t": ""}, {"t": "d" * 129}, {"other": "dev"}, ["t"]])
async def test_bad_ticket_holders_are_refused_and_nothing_is_stored(
    store: Store, holders: Any
) -> None:
    with pytest.raises(InvalidRequest):
        await store.spend_tickets({"t": T0 + 10}, T0, holders=holders)
    assert await store.spent_tickets(T0) == {}
    assert await store.ticket_holders(T0) == {}


async def test_ticket_holders_are_durable(sql_backend: Any) -> None:
    store = await sql_backend.open()
    spends = [
        store.spend_tickets({f"t{i}": T0 + 100}, T0, holders={f"t{i}": f"d{i}"}) for i in range(5)
    ]
    await asyncio.gather(*spends)
    await store.close()
    again = await sql_backend.open()
    assert await again.ticket_holders(T0) == {f"t{i}": f"d{i}" for i in range(5)}
