"""First-order thermal model per device class: pure arithmetic, no I/O, clock or randomness.

One lumped heat capacity behind one thermal resistance (Newton's law of cooling):
``dT/dt = (ambient + c_per_w × P − T) / time_constant_s``. For a constant power ``P`` over a
step the solution is exact: ``T(t) = T_ss + (T0 − T_ss) e^(−t/τ)`` with the steady state
``T_ss = ambient + c_per_w × P``. So a coarse step is as exact as many small ones, and the time a
device will cross a threshold has a closed form (``time_to_temp``).

Throttling: above ``throttle_start_c`` a device runs work slower, linearly down to
``min_speed`` at ``throttle_full_c`` (phones and Pis drop clock frequency when hot; the OS does
this whatever the scheduler wants, so the simulator applies it to every policy alike).

Usage::

    spec = THERMAL_SPECS[DeviceType.SMARTPHONE]
    t = thermal_step(spec, temp_c=30.0, power_w=3.3, dt_s=60.0)
    throttle_factor(spec, t)    # 1.0 when cool
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from fogmesh.devices.model import DeviceType

__all__ = [
    "THERMAL_SPECS",
    "ThermalSpec",
    "steady_state_c",
    "thermal_step",
    "throttle_factor",
    "time_to_temp",
]


@dataclass(frozen=True, slots=True)
class ThermalSpec:
    """Ambient, °C of rise per watt at steady state, time constant, and the throttle curve."""

    ambient_c: float
    c_per_w: float
    time_constant_s: float
    throttle_start_c: float
    throttle_full_c: float
    min_speed: float = 0.5

    def __post_init__(self) -> None:
        if not self.c_per_w >= 0 or not self.time_constant_s > 0:
            raise ValueError("need c_per_w ≥ 0 and time_constant_s > 0")
        if not self.throttle_start_c < self.throttle_full_c:
            raise ValueError("need throttle_start_c < throttle_full_c")
        if not 0 < self.min_speed <= 1:
            raise ValueError("min_speed must be in (0, 1]")


def steady_state_c(spec: ThermalSpec, power_w: float, ambient_c: float | None = None) -> float:
    """Temperature a constant ``power_w`` settles at."""
    base = spec.ambient_c if ambient_c is None else ambient_c
    return base + spec.c_per_w * power_w


def thermal_step(
    spec: ThermalSpec,
    temp_c: float,
    power_w: float,
    dt_s: float,
    ambient_c: float | None = None,
) -> float:
    """Temperature after ``dt_s`` seconds at a constant ``power_w`` (exact for the model)."""
    if dt_s < 0:
        raise ValueError("dt_s must be ≥ 0")
    target = steady_state_c(spec, power_w, ambient_c)
    return target + (temp_c - target) * math.exp(-dt_s / spec.time_constant_s)


def time_to_temp(
    spec: ThermalSpec,
    temp_c: float,
    power_w: float,
    target_c: float,
    ambient_c: float | None = None,
) -> float | None:
    """Seconds until the temperature reaches ``target_c`` at constant power; ``None`` if never.

    ``0.0`` if it is already at or past the target in the direction it is moving.
    """
    ss = steady_state_c(spec, power_w, ambient_c)
    if temp_c == target_c:
        return 0.0
    if temp_c < target_c:
        if ss <= target_c:
            return None
    elif ss >= target_c:
        return None
    return spec.time_constant_s * math.log((temp_c - ss) / (target_c - ss))


def throttle_factor(spec: ThermalSpec, temp_c: float) -> float:
    """Speed multiplier in [min_speed, 1] the platform applies at this temperature."""
    if temp_c <= spec.throttle_start_c:
        return 1.0
    if temp_c >= spec.throttle_full_c:
        return spec.min_speed
    span = (temp_c - spec.throttle_start_c) / (spec.throttle_full_c - spec.throttle_start_c)
    return 1.0 - (1.0 - spec.min_speed) * span


# Sources and assumptions (docs/simulation.md has the table):
# - ambient 25 °C indoors (ISO 7730 comfort range 20–26 °C); desktops and Pis sit in rooms too.
# - c_per_w: chosen so full load settles where devices are reported to settle without throttling
#   limits: a phone at 3.3 W → 25 + 13 × 3.3 ≈ 68 °C SoC (sustained-load phone tests reach
#   65–75 °C and throttle), a laptop at 23.6 W → ≈ 63 °C with its fan, a Pi 4 at 6.4 W with a
#   passive case → ≈ 63 °C, a desktop at 150 W → ≈ 55 °C. These are calibrations, not measurements.
# - time constants: small passively cooled devices heat within minutes (τ ≈ 5 min for phones,
#   tablets), laptops and desktops more slowly (τ ≈ 10–15 min) — assumed.
# - throttling: Android phones begin to throttle around 55 °C and hard-throttle near 70 °C; the
#   Raspberry Pi 4 firmware soft-throttles from 80 °C (60 °C here with the case offset) — assumed.
THERMAL_SPECS: Final[dict[DeviceType, ThermalSpec]] = {
    DeviceType.SMARTPHONE: ThermalSpec(25.0, 13.0, 300.0, 55.0, 70.0, 0.5),
    DeviceType.TABLET: ThermalSpec(25.0, 4.5, 360.0, 55.0, 70.0, 0.5),
    DeviceType.LAPTOP: ThermalSpec(25.0, 1.6, 600.0, 60.0, 80.0, 0.6),
    DeviceType.DESKTOP: ThermalSpec(25.0, 0.2, 900.0, 70.0, 90.0, 0.7),
    DeviceType.RASPBERRY_PI: ThermalSpec(25.0, 5.9, 400.0, 60.0, 80.0, 0.6),
}
