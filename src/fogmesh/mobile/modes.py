"""The ladders the policy climbs: power modes, pressure bands and the reasons it gives.

Bands are ordered by severity (0 = no pressure), so "the worst of two" is ``max`` and "relax by
one step" is ``- 1``; the power mode is the worst band mapped onto the four seed tiers.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any, NamedTuple

__all__ = [
    "BatteryBand",
    "MemoryBand",
    "PowerMode",
    "Reason",
    "ThermalBand",
]


class PowerMode(StrEnum):
    PERFORMANCE = "performance"
    BALANCED = "balanced"
    POWER_SAVE = "power_save"
    CRITICAL = "critical"

    @property
    def severity(self) -> int:
        return _MODE_SEVERITY[self]


_MODE_SEVERITY = {
    PowerMode.PERFORMANCE: 0,
    PowerMode.BALANCED: 1,
    PowerMode.POWER_SAVE: 2,
    PowerMode.CRITICAL: 3,
}


class BatteryBand(IntEnum):
    """Where the battery *reading* sits (before charging relaxes it)."""

    NORMAL = 0  # above battery_conservative, or no battery reading
    CONSERVATIVE = 1  # ≤ battery_conservative
    LOW = 2  # ≤ battery_low
    CRITICAL = 3  # ≤ battery_critical


class ThermalBand(IntEnum):
    NORMAL = 0
    WARM = 1  # ≥ thermal_warm °C, or platform level ≥ platform_warm_level
    HOT = 2  # ≥ thermal_hot
    CRITICAL = 3  # ≥ thermal_critical


class MemoryBand(IntEnum):
    NORMAL = 0
    LOW = 1  # available RAM < memory_low_gb
    CRITICAL = 2  # available RAM < memory_critical_gb


class Reason(NamedTuple):
    """One constraint the policy applied: a stable code for programs, text for people.

    A named tuple rather than a frozen dataclass: it is as immutable and hashable, and several
    are built on every evaluation, where it costs less than half as much.
    """

    code: str  # machine-readable, e.g. "battery_critical"
    text: str  # human text, e.g. "battery 8% ≤ critical 10%, not charging → critical, CPU ≤ 20%"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text}
