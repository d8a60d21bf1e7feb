"""Transport preference (first matching row of the table in docs/mobile.md) and routing."""

from __future__ import annotations

from typing import Any

import pytest
from mobile_factories import desktop, phone

from fogmesh.devices.model import DeviceCapabilities, DeviceProfile, NetworkType
from fogmesh.errors import InvalidRequest
from fogmesh.fog.tasks import TaskPriority
from fogmesh.mobile import ResourcePolicy, Transport, TransportPreference, evaluate
from fogmesh.mobile.transport import route_message

P = ResourcePolicy()
T = TransportPreference
NO_MESH_RADIO = DeviceCapabilities(has_battery=True, supported_transports=("betanet",))
WITH_MESH_RADIO = DeviceCapabilities(has_battery=True, supported_transports=("bitchat", "betanet"))


@pytest.mark.parametrize(
    ("profile", "preference", "code"),
    [
        # row 1: no internet link → mesh only, whatever else holds
        (phone(network_type=NetworkType.NONE), T.BITCHAT_ONLY, "transport_network_none"),
        (
            phone(network_type=NetworkType.NONE, mesh_neighbours=0),
            T.BITCHAT_ONLY,
            "transport_network_none",
        ),
        # row 2: critical battery (≤ 10 %, not charging) → mesh only, even on fast wifi
        (phone(battery_percent=10.0), T.BITCHAT_ONLY, "transport_battery_critical"),
        (
            phone(battery_percent=3.0, mesh_neighbours=0),
            T.BITCHAT_ONLY,
            "transport_battery_critical",
        ),
        # charging at 5 % is treated as low → row 5, not row 2
        (phone(battery_percent=5.0, charging=True), T.BITCHAT_PREFERRED, "transport_battery_low"),
        # rows 3–4: no mesh path → internet only
        (phone(capabilities=NO_MESH_RADIO), T.BETANET_ONLY, "transport_no_mesh_support"),
        (phone(mesh_neighbours=0), T.BETANET_ONLY, "transport_no_mesh_neighbour"),
        (
            phone(battery_percent=15.0, mesh_neighbours=0),
            T.BETANET_ONLY,
            "transport_no_mesh_neighbour",
        ),
        (phone(capabilities=WITH_MESH_RADIO), T.BETANET_PREFERRED, "transport_fast_link"),
        # row 5: low battery (≤ 20 %) → prefer the mesh
        (phone(battery_percent=20.0), T.BITCHAT_PREFERRED, "transport_battery_low"),
        # row 6: OS low power mode → prefer the mesh
        (phone(low_power_mode=True), T.BITCHAT_PREFERRED, "transport_low_power_mode"),
        # row 7: cellular or metered: on battery prefer the mesh, on mains balanced
        (phone(network_type=NetworkType.CELLULAR), T.BITCHAT_PREFERRED, "transport_costly_link"),
        (phone(metered=True), T.BITCHAT_PREFERRED, "transport_costly_link"),
        (
            phone(network_type=NetworkType.CELLULAR, charging=True),
            T.BALANCED,
            "transport_costly_link",
        ),
        # row 8: latency > 300 ms → balanced (300 itself is not slow)
        (phone(latency_ms=301.0), T.BALANCED, "transport_high_latency"),
        (phone(latency_ms=300.0), T.BETANET_PREFERRED, "transport_fast_link"),
        # row 9: conservative battery (≤ 40 %, not charging) → balanced
        (phone(battery_percent=40.0), T.BALANCED, "transport_battery_conservative"),
        (phone(battery_percent=40.0, charging=True), T.BETANET_PREFERRED, "transport_fast_link"),
        # row 10: network type unknown → balanced
        (phone(network_type=None), T.BALANCED, "transport_network_unknown"),
        # row 11: unmetered wifi/ethernet, latency fine, battery fine → prefer the internet
        (phone(), T.BETANET_PREFERRED, "transport_fast_link"),
        (desktop(), T.BETANET_PREFERRED, "transport_fast_link"),
    ],
)
def test_preference_table(
    profile: DeviceProfile, preference: TransportPreference, code: str
) -> None:
    opt = evaluate(profile, P)
    assert opt.transport_preference is preference
    assert [c for c in opt.reason_codes if c.startswith("transport_")] == [code]


def test_all_five_preferences_are_reachable() -> None:
    reached = {
        evaluate(p, P).transport_preference
        for p in (
            phone(network_type=NetworkType.NONE),
            phone(battery_percent=15.0),
            phone(latency_ms=900.0),
            phone(),
            phone(mesh_neighbours=0),
        )
    }
    assert reached == set(TransportPreference)


BITCHAT, BETANET = Transport.BITCHAT, Transport.BETANET


@pytest.mark.parametrize(
    ("preference", "size", "priority", "internet", "mesh", "primary", "fallback", "code"),
    [
        # *_only fixes the primary; the fallback is the other link if it physically exists
        (T.BITCHAT_ONLY, 100, 3, True, True, BITCHAT, BETANET, "route_mesh_only"),
        (T.BITCHAT_ONLY, 100, 3, False, True, BITCHAT, None, "route_mesh_only"),
        # offline and nobody in range: queued on the mesh (store-and-forward), no alternative
        (T.BITCHAT_ONLY, 100, 3, False, False, BITCHAT, None, "route_mesh_only"),
        (T.BETANET_ONLY, 100, 3, True, False, BETANET, None, "route_internet_only"),
        (T.BETANET_ONLY, 100, 3, True, True, BETANET, BITCHAT, "route_internet_only"),
        # bitchat_preferred: up to the mesh limit 16384 B over the mesh, larger over the internet
        (T.BITCHAT_PREFERRED, 16384, 3, True, True, BITCHAT, BETANET, "route_prefer_mesh"),
        (T.BITCHAT_PREFERRED, 16385, 3, True, True, BETANET, BITCHAT, "route_too_big_for_mesh"),
        # balanced: urgent (priority ≥ 7) over the internet; else ≤ 1024 B over the mesh
        (T.BALANCED, 10, 7, True, True, BETANET, BITCHAT, "route_urgent"),
        (T.BALANCED, 10, 6, True, True, BITCHAT, BETANET, "route_small_over_mesh"),
        (T.BALANCED, 1024, 3, True, True, BITCHAT, BETANET, "route_small_over_mesh"),
        (T.BALANCED, 1025, 3, True, True, BETANET, BITCHAT, "route_large_over_internet"),
        (T.BETANET_PREFERRED, 10, 1, True, True, BETANET, BITCHAT, "route_prefer_internet"),
        # a soft preference yields to the only link that exists
        (T.BITCHAT_PREFERRED, 10, 3, True, False, BETANET, None, "route_only_link_available"),
        (T.BETANET_PREFERRED, 10, 3, False, True, BITCHAT, None, "route_only_link_available"),
    ],
)
def test_routing_table(
    preference: TransportPreference,
    size: int,
    priority: int,
    internet: bool,
    mesh: bool,
    primary: Transport,
    fallback: Transport | None,
    code: str,
) -> None:
    decision = route_message(
        preference, size, priority, internet_available=internet, mesh_available=mesh, policy=P
    )
    assert (decision.primary, decision.fallback, decision.reason.code) == (primary, fallback, code)
    assert decision.to_dict()["primary"] == primary.value


def test_routing_from_an_optimization_uses_its_state() -> None:
    offline = evaluate(phone(network_type=NetworkType.NONE), P)
    decision = offline.get_transport_routing_decision(500, TaskPriority.CRITICAL)
    assert (decision.primary, decision.fallback) == (BITCHAT, None)
    assert decision.reason.text == "500 B, priority 10: mesh only → bitchat"


@pytest.mark.parametrize(
    ("size", "priority"),
    [(-1, 3), (True, 3), (1.5, 3), (10, 0), (10, 11), (10, "high"), (10, None)],
)
def test_bad_message_arguments(size: Any, priority: Any) -> None:
    opt = evaluate(phone(), P)
    with pytest.raises(InvalidRequest):
        opt.get_transport_routing_decision(size, priority)
