"""Which link a device should favour (BitChat mesh vs BetaNet internet), and per message.

``choose_preference`` turns the device's state into one of five preferences by the first
matching row of the table in docs/mobile.md; ``route_message`` turns a preference plus one
message (size, priority) into a primary link and a distinct fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, SupportsInt

from fogmesh.devices.model import DeviceProfile, NetworkType
from fogmesh.errors import InvalidRequest
from fogmesh.mobile.modes import BatteryBand, Reason
from fogmesh.mobile.thresholds import ResourcePolicy

__all__ = [
    "RoutingDecision",
    "Transport",
    "TransportPreference",
    "choose_preference",
    "mesh_supported",
    "route_message",
]


class TransportPreference(StrEnum):
    BITCHAT_ONLY = "bitchat_only"
    BITCHAT_PREFERRED = "bitchat_preferred"
    BALANCED = "balanced"
    BETANET_PREFERRED = "betanet_preferred"
    BETANET_ONLY = "betanet_only"


class Transport(StrEnum):
    BITCHAT = "bitchat"  # low-power Bluetooth mesh, offline-first, store-and-forward
    BETANET = "betanet"  # the internet link to the coordinator and peers


# Names a detector may put in DeviceCapabilities.supported_transports for a mesh radio.
_MESH_NAMES = frozenset({"bitchat", "bluetooth", "ble", "mesh"})

_NETWORK_NONE = Reason("transport_network_none", "no internet link: mesh only (store-and-forward)")
_NO_NEIGHBOUR = Reason("transport_no_mesh_neighbour", "no mesh neighbour in range: internet only")
_NO_MESH_RADIO = Reason("transport_no_mesh_support", "device has no mesh radio: internet only")
_LOW_POWER = Reason("transport_low_power_mode", "OS low power mode is on: prefer the mesh")
# [cellular][on mains]
_COSTLY = tuple(
    tuple(
        Reason(
            "transport_costly_link",
            f"{link} link costs data (on mains power): balanced"
            if mains
            else f"{link} link costs data and battery: prefer the mesh",
        )
        for mains in (False, True)
    )
    for link in ("metered", "cellular")
)
_UNKNOWN_NET = Reason("transport_network_unknown", "network type unknown: balanced")
_FAST_LINK = Reason(
    "transport_fast_link", "unmetered wifi/ethernet with acceptable latency: prefer the internet"
)


def mesh_supported(profile: DeviceProfile) -> bool:
    """False only when capabilities list transports and none of them is a mesh radio."""
    listed = profile.capabilities.supported_transports
    return not listed or any(name.lower() in _MESH_NAMES for name in listed)


# Enum attribute access is several times slower than a global; this runs on every evaluation.
_NET_NONE = NetworkType.NONE
_NET_CELLULAR = NetworkType.CELLULAR
_BAT_CRITICAL = BatteryBand.CRITICAL
_BAT_LOW = BatteryBand.LOW
_BAT_CONSERVATIVE = BatteryBand.CONSERVATIVE
_BITCHAT_ONLY = TransportPreference.BITCHAT_ONLY
_BITCHAT_PREFERRED = TransportPreference.BITCHAT_PREFERRED
_BALANCED = TransportPreference.BALANCED
_BETANET_PREFERRED = TransportPreference.BETANET_PREFERRED
_BETANET_ONLY = TransportPreference.BETANET_ONLY


def choose_preference(
    profile: DeviceProfile,
    policy: ResourcePolicy,
    battery: BatteryBand,
    latency_high: bool,
    has_mesh_radio: bool,
) -> tuple[TransportPreference, Reason]:
    """First matching row wins. ``battery`` is the effective band (charging already relaxed it)."""
    network = profile.network_type
    if network is _NET_NONE:
        return _BITCHAT_ONLY, _NETWORK_NONE
    if battery is _BAT_CRITICAL:
        return _BITCHAT_ONLY, Reason(
            "transport_battery_critical",
            f"battery critical ({profile.battery_percent:g}%, not charging): mesh only",
        )
    if not has_mesh_radio:
        return _BETANET_ONLY, _NO_MESH_RADIO
    if profile.mesh_neighbours == 0:
        return _BETANET_ONLY, _NO_NEIGHBOUR
    if battery is _BAT_LOW:
        return _BITCHAT_PREFERRED, Reason(
            "transport_battery_low",
            f"battery low ({profile.battery_percent:g}%): prefer the mesh",
        )
    if profile.low_power_mode is True:
        return _BITCHAT_PREFERRED, _LOW_POWER
    if network is _NET_CELLULAR or profile.metered is True:
        mains = profile.on_mains
        reason = _COSTLY[network is _NET_CELLULAR][mains]
        return (_BALANCED if mains else _BITCHAT_PREFERRED), reason
    if latency_high:
        return _BALANCED, Reason(
            "transport_high_latency",
            f"internet latency {profile.latency_ms:g} ms is slow "
            f"(> {policy.high_latency_ms:g} ms): balanced",
        )
    if battery is _BAT_CONSERVATIVE:
        return _BALANCED, Reason(
            "transport_battery_conservative",
            f"battery {profile.battery_percent:g}% in the conservative band: balanced",
        )
    if network is None:
        return _BALANCED, _UNKNOWN_NET
    return _BETANET_PREFERRED, _FAST_LINK


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Where one message goes: ``primary`` first, ``fallback`` only if the primary cannot
    deliver. ``fallback`` is never ``primary``; it is ``None`` only when the other link is
    physically unavailable (no internet link, or no mesh radio/neighbour)."""

    primary: Transport
    fallback: Transport | None
    reason: Reason
    preference: TransportPreference
    message_size_bytes: int
    priority: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary.value,
            "fallback": self.fallback.value if self.fallback else None,
            "reason": self.reason.to_dict(),
            "preference": self.preference.value,
            "message_size_bytes": self.message_size_bytes,
            "priority": self.priority,
        }


def route_message(
    preference: TransportPreference,
    message_size_bytes: int,
    priority: SupportsInt,
    *,
    internet_available: bool,
    mesh_available: bool,
    policy: ResourcePolicy,
) -> RoutingDecision:
    """Pure per-message routing. ``priority`` is on the TaskPriority scale (1 low … 10 critical)."""
    if (
        isinstance(message_size_bytes, bool)
        or not isinstance(message_size_bytes, int)
        or message_size_bytes < 0
    ):
        raise InvalidRequest(
            f"message_size_bytes must be an integer ≥ 0, not {message_size_bytes!r}"
        )
    try:
        level = int(priority)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"priority must be an integer 1–10, not {priority!r}") from exc
    if isinstance(priority, bool) or not 1 <= level <= 10:
        raise InvalidRequest(f"priority must be an integer 1–10, not {priority!r}")

    size = message_size_bytes
    urgent = level >= policy.urgent_priority
    what = f"{size} B, priority {level}"
    P = TransportPreference
    if preference is P.BITCHAT_ONLY:
        primary, code, why = Transport.BITCHAT, "route_mesh_only", "mesh only"
    elif preference is P.BETANET_ONLY:
        primary, code, why = Transport.BETANET, "route_internet_only", "internet only"
    elif preference is P.BITCHAT_PREFERRED:
        if size > policy.mesh_max_message_bytes:
            primary, code = Transport.BETANET, "route_too_big_for_mesh"
            why = f"larger than the mesh limit {policy.mesh_max_message_bytes} B"
        else:
            primary, code, why = Transport.BITCHAT, "route_prefer_mesh", "mesh preferred"
    elif preference is P.BALANCED:
        if urgent:
            primary, code = Transport.BETANET, "route_urgent"
            why = f"urgent (priority ≥ {policy.urgent_priority}): lowest latency"
        elif size <= policy.mesh_small_message_bytes:
            primary, code = Transport.BITCHAT, "route_small_over_mesh"
            why = f"small (≤ {policy.mesh_small_message_bytes} B): over the mesh"
        else:
            primary, code = Transport.BETANET, "route_large_over_internet"
            why = f"larger than {policy.mesh_small_message_bytes} B: over the internet"
    else:
        primary, code, why = Transport.BETANET, "route_prefer_internet", "internet preferred"

    available = {Transport.BITCHAT: mesh_available, Transport.BETANET: internet_available}
    other = Transport.BETANET if primary is Transport.BITCHAT else Transport.BITCHAT
    only = preference in (P.BITCHAT_ONLY, P.BETANET_ONLY)
    if not only and not available[primary] and available[other]:
        # A soft preference yields to the link that exists rather than queueing behind one
        # that does not.
        primary, other = other, primary
        code, why = "route_only_link_available", f"{other.value} unavailable"
    fallback = other if available[other] else None
    return RoutingDecision(
        primary=primary,
        fallback=fallback,
        reason=Reason(code, f"{what}: {why} → {primary.value}"),
        preference=preference,
        message_size_bytes=size,
        priority=level,
    )
