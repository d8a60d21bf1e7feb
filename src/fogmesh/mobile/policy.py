"""Mobile resource policy: for one device at one moment, how hard may it work?

``evaluate(profile, policy, previous)`` is a pure function — no I/O, no clock, no randomness —
so the agent, the coordinator and the fleet simulator all run the same decision. The rules,
thresholds and the hysteresis band are described in docs/mobile.md; in short:

* each dimension (battery, thermal, memory, latency) is put in a band; a band is entered at its
  threshold and left only once the reading is past the threshold by the hysteresis band;
* charging relaxes the battery band by one step (so charging at ≤ 10 % is ``power_save``, not
  ``critical``);
* the power mode is the worst band; every limit is the minimum over the rules that apply
  ("strictest wins"), never overwritten by a later rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, SupportsInt

from fogmesh.devices.model import DeviceProfile, NetworkType
from fogmesh.mobile.chunking import ChunkingConfig
from fogmesh.mobile.modes import BatteryBand, MemoryBand, PowerMode, Reason, ThermalBand
from fogmesh.mobile.thresholds import DEFAULT_POLICY, ResourcePolicy
from fogmesh.mobile.transport import (
    RoutingDecision,
    TransportPreference,
    choose_preference,
    mesh_supported,
    route_message,
)

__all__ = [
    "ChunkingConfig",
    "PowerMode",
    "Reason",
    "ResourceOptimization",
    "ResourcePolicy",
    "TransportPreference",
    "evaluate",
]


@dataclass(slots=True)
class ResourceOptimization:
    """The policy's verdict for one device at one moment.

    Treat it as a value: it is not frozen only because a frozen dataclass costs a third of the
    evaluation budget to construct; use ``dataclasses.replace`` to derive a changed one.
    """

    power_mode: PowerMode
    cpu_limit_percent: float  # 0–100 of the device's CPU capacity
    memory_limit_mb: int | None  # per task; None: no limit beyond the device's own
    max_concurrent_tasks: int  # 0 admits no new work
    chunking_config: ChunkingConfig
    transport_preference: TransportPreference
    reasons: tuple[Reason, ...]
    device_id: str = ""
    # The bands the readings were in after hysteresis (the battery band is the reading's,
    # before charging relaxed it). ``evaluate`` reads them back from ``previous``.
    battery_band: BatteryBand = BatteryBand.NORMAL
    thermal_band: ThermalBand = ThermalBand.NORMAL
    memory_band: MemoryBand = MemoryBand.NORMAL
    latency_high: bool = False
    internet_available: bool = True
    mesh_available: bool = True
    policy: ResourcePolicy = field(default=DEFAULT_POLICY, repr=False, compare=False)

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def admits_work(self) -> bool:
        return self.max_concurrent_tasks > 0

    def get_transport_routing_decision(
        self, message_size_bytes: int, priority: SupportsInt = 3
    ) -> RoutingDecision:
        """Primary and fallback link for one message (priority on the TaskPriority scale)."""
        return route_message(
            self.transport_preference,
            message_size_bytes,
            priority,
            internet_available=self.internet_available,
            mesh_available=self.mesh_available,
            policy=self.policy,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view (enums as their values)."""
        return {
            "device_id": self.device_id,
            "power_mode": self.power_mode.value,
            "cpu_limit_percent": self.cpu_limit_percent,
            "memory_limit_mb": self.memory_limit_mb,
            "max_concurrent_tasks": self.max_concurrent_tasks,
            "chunking": self.chunking_config.to_dict(),
            "chunk_size": self.chunking_config.effective_chunk_size(),
            "transport_preference": self.transport_preference.value,
            "reasons": [r.to_dict() for r in self.reasons],
            "bands": {
                "battery": self.battery_band.name.lower(),
                "thermal": self.thermal_band.name.lower(),
                "memory": self.memory_band.name.lower(),
                "latency_high": self.latency_high,
            },
            "internet_available": self.internet_available,
            "mesh_available": self.mesh_available,
        }


_NET_NONE = NetworkType.NONE
# Builds a Reason without the named tuple's Python-level __new__: ~0.1 µs saved per reason,
# and evaluate builds several per call.
_reason: Callable[[tuple[str, str]], Reason] = partial(tuple.__new__, Reason)
_BATTERY_BANDS = tuple(BatteryBand)
_THERMAL_BANDS = tuple(ThermalBand)
_MEMORY_BANDS = tuple(MemoryBand)


def evaluate(
    profile: DeviceProfile,
    policy: ResourcePolicy,
    previous: ResourceOptimization | None = None,
) -> ResourceOptimization:
    """Decide power mode, limits, chunking and transport for ``profile`` under ``policy``.

    ``previous`` (the last verdict for the same device) enables hysteresis; a verdict for a
    different device id is ignored.
    """
    t = policy._tables
    texts = t.texts
    if previous is not None and previous.device_id != profile.device_id:
        previous = None
    reasons: list[Reason] = []
    caps = profile.capabilities

    # Battery. NaN compares false everywhere, so `pct == pct` screens it out as "no reading".
    band = 0
    pct = profile.battery_percent
    charging = profile.charging is True
    if pct is not None and pct == pct and caps.has_battery is not False:
        crit, low, cons = t.battery
        band = 3 if pct <= crit else 2 if pct <= low else 1 if pct <= cons else 0
        held = 0
        if previous is not None and previous.battery_band > band:
            lc, ll, lk = t.battery_leave
            shifted = 3 if pct <= lc else 2 if pct <= ll else 1 if pct <= lk else 0
            kept = min(int(previous.battery_band), shifted)
            if kept > band:
                band, held = kept, 1
        if band:
            code, rest = texts.battery[band][charging][held]
            reasons.append(_reason((code, f"battery {round(pct, 1):g}{rest}")))
    effective = band - 1 if charging and band else band

    # Thermal: the platform's own status and the °C reading are two readings of one danger;
    # the stricter band wins, as with every other limit (a status of "none" beside 70 °C must
    # not lift the limit). The OS smooths its status itself, so only the °C band has hysteresis.
    tband = 0
    platform = profile.platform_thermal
    if platform is not None:
        key = (platform.platform, platform.status)
        tband = t.platform[key]
        if tband:
            reasons.append(texts.platform[key])
    temp = profile.cpu_temp_c
    if temp is not None and temp == temp:
        warm, hot, tcrit = t.thermal
        cband = 3 if temp >= tcrit else 2 if temp >= hot else 1 if temp >= warm else 0
        held = 0
        if previous is not None and previous.thermal_band > cband:
            lw, lh, lc = t.thermal_leave
            shifted = 3 if temp >= lc else 2 if temp >= lh else 1 if temp >= lw else 0
            kept = min(int(previous.thermal_band), shifted)
            if kept > cband:
                cband, held = kept, 1
        if cband:
            code, rest = texts.thermal[cband][held]
            reasons.append(_reason((code, f"CPU {round(temp, 1):g}{rest}")))
        if cband > tband:
            tband = cband

    low_power = profile.low_power_mode is True
    if low_power:
        reasons.append(texts.low_power)

    # Strictest wins: every limit is a min over the rules that apply, never an assignment.
    severity = max(effective, tband, 2 if low_power else 0)
    cpu = min(t.cpu_by_battery[effective], t.cpu_by_thermal[tband])
    if low_power:
        cpu = min(cpu, policy.cpu_limit_low_power_mode)
    memory_limit = t.memory_by_mode[severity]
    tasks = t.tasks_by_mode[severity]
    cores = caps.cpu_cores_logical
    if cores is not None and 0 < cores < tasks:
        tasks = cores

    # Memory pressure narrows concurrency and per-task memory, not the power mode.
    mband = 0
    avail = profile.ram_available_mb
    if avail is not None:
        mcrit, mlow = t.memory_mb
        mband = 2 if avail < mcrit else 1 if avail < mlow else 0
        held = 0
        if previous is not None and previous.memory_band > mband:
            lc, ll = t.memory_leave_mb
            shifted = 2 if avail < lc else 1 if avail < ll else 0
            kept = min(int(previous.memory_band), shifted)
            if kept > mband:
                mband, held = kept, 1
        if mband:
            share = max(1, int(avail * policy.memory_low_fraction))
            if memory_limit is None or share < memory_limit:
                memory_limit = share
            cap = policy.max_tasks_memory_critical if mband == 2 else policy.max_tasks_memory_low
            if cap < tasks:
                tasks = cap
            code, rest = texts.memory[mband][held]
            reasons.append(
                _reason((code, f"available RAM {avail}{rest}, memory ≤ {share} MB per task"))
            )

    mode_reason = texts.modes[severity]
    if mode_reason is not None:
        reasons.append(mode_reason)

    device_type = profile.device_type
    if device_type == "smartphone" or device_type == "tablet":
        reasons.append(texts.mobile_chunk)
    chunk_battery = max(effective, 2) if low_power else effective
    chunking = t.chunks[(device_type, chunk_battery, tband, mband)]

    latency = profile.latency_ms
    latency_high = False
    if latency is not None:
        latency_high = latency > t.latency_high_ms or (
            previous is not None and previous.latency_high and latency > t.latency_leave_ms
        )
    has_mesh_radio = mesh_supported(profile)
    preference, transport_reason = choose_preference(
        profile, policy, _BATTERY_BANDS[effective], latency_high, has_mesh_radio
    )
    reasons.append(transport_reason)

    return ResourceOptimization(
        t.modes[severity],
        cpu,
        memory_limit,
        tasks,
        chunking,
        preference,
        tuple(reasons),
        profile.device_id,
        _BATTERY_BANDS[band],
        _THERMAL_BANDS[tband],
        _MEMORY_BANDS[mband],
        latency_high,
        profile.network_type is not _NET_NONE,
        has_mesh_radio and profile.mesh_neighbours != 0,
        policy,
    )
