"""How much of the fleet fogmesh's own rules let fog work use: sizes the offered load.

The issue sets the default workload at ≈ 60 % of the *eligible* capacity — what the device
policy allows (charged enough, cool enough, reachable), not the raw cores. For each device this
module finds the largest CPU share fog work can hold at thermal steady state under the real
``mobile.policy.evaluate``: a share is sustainable when the temperature it settles at (owner's
day load + the share, ``thermal.steady_state_c``) leaves the policy's CPU limit at or above it
and below the scheduler's thermal ceiling. A phone at full load settles near 68 °C (critical:
15 %), at 60 % near 53 °C (warm: 60 % allowed) — so 60 % is its sustainable share.

Battery devices are also eligible only part of the day (plugged in, or charged above the floor):
``BATTERY_ELIGIBLE_SHARE`` estimates that part. The run measures the real figure
(``offered_of_eligible`` in the metrics), so the estimate is checked, not trusted.
"""

from __future__ import annotations

from typing import Final

from fogmesh.devices.model import DeviceProfile
from fogmesh.fog.scheduler import DEFAULT_CONFIG
from fogmesh.mobile.policy import ResourcePolicy, evaluate
from fogmesh.sim.fleet import SimDevice
from fogmesh.sim.power import power_w
from fogmesh.sim.thermal import steady_state_c

__all__ = ["BATTERY_ELIGIBLE_SHARE", "capacity_ref_cores", "sustained_share"]

# Assumed share of the day a battery device may take work (plugged, or unplugged above the
# floor with charge to spare); mains devices: 1.
BATTERY_ELIGIBLE_SHARE: Final = 0.5
# Charge the policy is evaluated at for an unplugged battery device: mid-way through the range
# fog work may use (the floor, 20 %, to full).
_TYPICAL_PERCENT: Final = 60.0


def _candidate_shares(policy: ResourcePolicy) -> list[float]:
    limits = {
        100.0,
        policy.cpu_limit_conservative_battery,
        policy.cpu_limit_low_battery,
        policy.cpu_limit_warm,
        policy.cpu_limit_hot,
        policy.cpu_limit_critical_thermal,
    }
    return sorted((x / 100.0 for x in limits), reverse=True)


def sustained_share(dev: SimDevice, policy: ResourcePolicy) -> float:
    """Largest CPU share of ``dev`` fog work may hold at thermal steady state (0 if none)."""
    ceiling = DEFAULT_CONFIG.thermal_ceiling_c
    for share in _candidate_shares(policy):
        load = min(1.0, dev.hw.day_load + share)
        temp = steady_state_c(dev.tspec, power_w(dev.pspec, load), dev.ambient_c)
        if temp >= ceiling:
            continue
        profile = DeviceProfile(
            device_id=dev.device_id,
            device_type=dev.device_type,
            capabilities=dev.capabilities,
            battery_percent=_TYPICAL_PERCENT if dev.has_battery else None,
            charging=False if dev.has_battery else None,
            cpu_temp_c=temp,
            network_type=dev.network_type,
        )
        opt = evaluate(profile, policy)
        if opt.admits_work and opt.cpu_limit_percent / 100.0 >= share - 1e-9:
            return share
    return 0.0


def capacity_ref_cores(fleet: list[SimDevice], policy: ResourcePolicy | None = None) -> float:
    """Eligible capacity in reference cores: cores × speed × sustainable share × availability."""
    pol = policy if policy is not None else ResourcePolicy()
    total = 0.0
    for d in fleet:
        avail = BATTERY_ELIGIBLE_SHARE if d.has_battery else 1.0
        total += d.cores * d.speed * sustained_share(d, pol) * avail
    return total
