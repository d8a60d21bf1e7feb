"""Battery and power-draw model per device class: pure arithmetic, no I/O, clock or randomness.

Draw is linear in load (the model PureEdgeSim and CloudSim use):
``power_w = idle_w + (max_w - idle_w) × load_fraction``.

Charging follows the usual lithium-ion CC/CV shape: a constant rate of ``cc_rate_per_h`` of the
capacity per hour (1.0 → 50 % in 30 min, the fast-charge figure phone makers quote) up to
``taper_soc``, then a constant-voltage taper in which the rate falls in proportion to the room
left, ``rate = cc_rate × (1 − soc) / (1 − taper_soc)`` — so the state of charge approaches 100 %
exponentially. JEITA temperature rules scale the rate: ×``jeita_warm_factor`` above
``jeita_warm_c`` (45 °C), zero above ``jeita_stop_c`` (50 °C) and below ``jeita_cold_c`` (0 °C).

A plugged device's load is covered by the charger (the battery is not cycled), which is why
charging devices are cheap hosts for fog work; the charger is assumed large enough for load plus
charge. Every step is solved in closed form, so a step of an hour is as exact as 3,600 steps of a
second — the simulator can advance a device lazily between events (in place, on a
``BatteryLedger``: the same step arithmetic as ``battery_step``, without a new value per step).

Usage::

    spec = PRESET_SPECS[DeviceType.SMARTPHONE]
    state = BatteryState.full(spec)
    state = battery_step(spec, state, load_fraction=1.0, dt_s=3600, plugged=False, temp_c=30)
    state.soc, state.load_from_battery_wh
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from fogmesh.devices.model import DeviceType

__all__ = [
    "PRESET_SPECS",
    "BatteryLedger",
    "BatteryState",
    "DevicePowerSpec",
    "battery_step",
    "charge_rate_per_h",
    "power_w",
    "time_to_soc",
]

_WH_TO_J: Final = 3600.0


@dataclass(frozen=True, slots=True)
class DevicePowerSpec:
    """One device class's power parameters. ``battery_wh=None`` means mains only (no battery)."""

    battery_wh: float | None
    idle_w: float
    max_w: float
    cc_rate_per_h: float = 1.0
    taper_soc: float = 0.5
    charge_efficiency: float = 0.9
    jeita_cold_c: float = 0.0
    jeita_warm_c: float = 45.0
    jeita_stop_c: float = 50.0
    jeita_warm_factor: float = 0.5

    def __post_init__(self) -> None:
        if self.battery_wh is not None and not self.battery_wh > 0:
            raise ValueError("battery_wh must be > 0 or None")
        if not 0 <= self.idle_w <= self.max_w:
            raise ValueError("need 0 ≤ idle_w ≤ max_w")
        if not 0 < self.taper_soc < 1 or not self.cc_rate_per_h > 0:
            raise ValueError("need 0 < taper_soc < 1 and cc_rate_per_h > 0")
        if not 0 < self.charge_efficiency <= 1:
            raise ValueError("charge_efficiency must be in (0, 1]")

    @property
    def has_battery(self) -> bool:
        return self.battery_wh is not None


@dataclass(frozen=True, slots=True)
class BatteryState:
    """Stored energy plus cumulative energy accounts (all in Wh).

    ``load_from_battery_wh + load_from_mains_wh`` is the energy the device drew (Σ power × time,
    less any demand an empty battery could not meet, counted in ``unmet_wh``);
    ``charge_from_mains_wh`` is what the charger took from the wall to store ``charged_wh``.
    """

    energy_wh: float
    load_from_battery_wh: float = 0.0
    load_from_mains_wh: float = 0.0
    charge_from_mains_wh: float = 0.0
    charged_wh: float = 0.0
    unmet_wh: float = 0.0
    capacity_wh: float = 0.0

    @classmethod
    def full(cls, spec: DevicePowerSpec) -> BatteryState:
        cap = spec.battery_wh or 0.0
        return cls(energy_wh=cap, capacity_wh=cap)

    @classmethod
    def at(cls, spec: DevicePowerSpec, soc: float) -> BatteryState:
        cap = spec.battery_wh or 0.0
        return cls(energy_wh=cap * min(1.0, max(0.0, soc)), capacity_wh=cap)

    @property
    def soc(self) -> float:
        """State of charge in [0, 1]; 1.0 for a mains-only device."""
        return self.energy_wh / self.capacity_wh if self.capacity_wh > 0 else 1.0

    @property
    def percent(self) -> float:
        return 100.0 * self.soc

    @property
    def empty(self) -> bool:
        return self.capacity_wh > 0 and self.energy_wh <= 0.0


def power_w(spec: DevicePowerSpec, load_fraction: float) -> float:
    """Electrical draw at a load in [0, 1] (clipped)."""
    load = min(1.0, max(0.0, load_fraction))
    return spec.idle_w + (spec.max_w - spec.idle_w) * load


def _jeita_factor(spec: DevicePowerSpec, temp_c: float) -> float:
    if temp_c > spec.jeita_stop_c or temp_c < spec.jeita_cold_c:
        return 0.0
    if temp_c > spec.jeita_warm_c:
        return spec.jeita_warm_factor
    return 1.0


def charge_rate_per_h(spec: DevicePowerSpec, soc: float, temp_c: float) -> float:
    """Fraction of capacity stored per hour at this state of charge and temperature."""
    f = _jeita_factor(spec, temp_c)
    if soc < spec.taper_soc:
        return spec.cc_rate_per_h * f
    return spec.cc_rate_per_h * f * max(0.0, 1.0 - soc) / (1.0 - spec.taper_soc)


def _charge_soc(spec: DevicePowerSpec, soc: float, hours: float, factor: float) -> float:
    """SoC after charging ``hours`` at JEITA ``factor`` — closed form of the CC/CV curve."""
    r = spec.cc_rate_per_h * factor
    if r <= 0 or hours <= 0:
        return soc
    if soc < spec.taper_soc:
        to_taper = (spec.taper_soc - soc) / r
        if hours <= to_taper:
            return soc + r * hours
        hours -= to_taper
        soc = spec.taper_soc
    k = r / (1.0 - spec.taper_soc)
    return 1.0 - (1.0 - soc) * math.exp(-k * hours)


class BatteryLedger:
    """A ``BatteryState`` that is advanced in place: the simulator's per-device battery.

    The arithmetic of a step lives here once; ``battery_step`` runs it on a copy, so the
    immutable value and the simulator's hot path cannot drift apart. In place because the
    simulator advances tens of thousands of batteries millions of times, and building a frozen
    value per step cost more than the model itself.
    """

    __slots__ = (
        "capacity_wh",
        "charge_from_mains_wh",
        "charged_wh",
        "energy_wh",
        "load_from_battery_wh",
        "load_from_mains_wh",
        "unmet_wh",
    )

    def __init__(self, state: BatteryState) -> None:
        self.energy_wh = state.energy_wh
        self.load_from_battery_wh = state.load_from_battery_wh
        self.load_from_mains_wh = state.load_from_mains_wh
        self.charge_from_mains_wh = state.charge_from_mains_wh
        self.charged_wh = state.charged_wh
        self.unmet_wh = state.unmet_wh
        self.capacity_wh = state.capacity_wh

    @property
    def soc(self) -> float:
        return self.energy_wh / self.capacity_wh if self.capacity_wh > 0 else 1.0

    @property
    def empty(self) -> bool:
        return self.capacity_wh > 0 and self.energy_wh <= 0.0

    def state(self) -> BatteryState:
        return BatteryState(
            self.energy_wh,
            self.load_from_battery_wh,
            self.load_from_mains_wh,
            self.charge_from_mains_wh,
            self.charged_wh,
            self.unmet_wh,
            self.capacity_wh,
        )

    def step(
        self, spec: DevicePowerSpec, demand_wh: float, dt_s: float, plugged: bool, temp_c: float
    ) -> None:
        """Advance ``dt_s`` seconds during which the device draws ``demand_wh`` (see
        ``battery_step``, which documents the model)."""
        cap = spec.battery_wh
        if cap is None:
            self.load_from_mains_wh += demand_wh
        elif plugged:
            energy = self.energy_wh
            new_soc = _charge_soc(spec, self.soc, dt_s / _WH_TO_J, _jeita_factor(spec, temp_c))
            stored = max(0.0, new_soc * cap - energy)
            self.energy_wh = energy + stored
            self.load_from_mains_wh += demand_wh
            self.charge_from_mains_wh += stored / spec.charge_efficiency
            self.charged_wh += stored
        else:
            energy = self.energy_wh
            drawn = min(demand_wh, energy)
            self.energy_wh = energy - drawn
            self.load_from_battery_wh += drawn
            self.unmet_wh += demand_wh - drawn


def battery_step(
    spec: DevicePowerSpec,
    state: BatteryState,
    load_fraction: float,
    dt_s: float,
    plugged: bool,
    temp_c: float,
) -> BatteryState:
    """Advance ``dt_s`` seconds at a constant load, plug state and temperature.

    Unplugged: the battery supplies ``power_w × dt`` until it is empty; demand after that is
    ``unmet_wh`` (the device is off). Plugged or mains-only: the wall supplies the load, and a
    battery charges along the CC/CV curve, costing ``stored / charge_efficiency`` at the wall.
    """
    if dt_s < 0:
        raise ValueError("dt_s must be ≥ 0")
    ledger = BatteryLedger(state)
    ledger.step(spec, power_w(spec, load_fraction) * dt_s / _WH_TO_J, dt_s, plugged, temp_c)
    return ledger.state()


def time_to_soc(
    spec: DevicePowerSpec,
    state: BatteryState | BatteryLedger,
    load_fraction: float,
    plugged: bool,
    temp_c: float,
    target_soc: float,
) -> float | None:
    """Seconds until the state of charge reaches ``target_soc`` under constant conditions.

    ``None`` if it never will (wrong direction, mains only, JEITA-stopped charging, or a
    target the CC/CV curve only approaches). ``0.0`` if it is already there. The simulator uses
    it to schedule threshold events (20 %, 10 %, empty) instead of ticking every device.
    """
    if spec.battery_wh is None:
        return None
    soc = state.soc
    if not plugged:
        if soc <= target_soc:
            return 0.0
        w = power_w(spec, load_fraction)
        if w <= 0:
            return None
        return (soc - target_soc) * spec.battery_wh * _WH_TO_J / w
    if soc >= target_soc:
        return 0.0
    r = spec.cc_rate_per_h * _jeita_factor(spec, temp_c)
    if r <= 0 or target_soc >= 1.0:
        return None
    hours = 0.0
    if soc < spec.taper_soc:
        if target_soc <= spec.taper_soc:
            return (target_soc - soc) / r * _WH_TO_J
        hours = (spec.taper_soc - soc) / r
        soc = spec.taper_soc
    k = r / (1.0 - spec.taper_soc)
    hours += math.log((1.0 - soc) / (1.0 - target_soc)) / k
    return hours * _WH_TO_J


# Sources (see docs/simulation.md for the full table):
# - phone: 18.75 Wh is inside the 12.9–19.3 Wh range of current phones (issue 6); 0.078 W idle and
#   3.3 W at full load are PureEdgeSim's smartphone defaults (Mechalikh et al., 2021).
# - tablet: ≈ 30 Wh (10–11" tablets ship 28–32 Wh); draw 0.3–8 W is our estimate from the phone
#   figures scaled by screen-off SoC power of larger tablet SoCs — an assumption, not a measurement.
# - laptop: 56 Wh (issue 6) and PureEdgeSim's laptop 1.7–23.6 W.
# - desktop: mains; 35–150 W is a typical office desktop (idle/full) — an assumption.
# - Raspberry Pi 4: mains; 2.7 W idle, 6.4 W under stress-ng are the Raspberry Pi 4 B figures
#   published by the Raspberry Pi Foundation's power measurements (Pi 4 B, 2019).
# - charging: 1 C constant current to 50 % (≈ 50 % in 30 min) then a CV taper; JEITA slows above
#   45 °C and stops above 50 °C (JEITA/BAJ guideline for Li-ion charging, 2007).
PRESET_SPECS: Final[dict[DeviceType, DevicePowerSpec]] = {
    DeviceType.SMARTPHONE: DevicePowerSpec(battery_wh=18.75, idle_w=0.078, max_w=3.3),
    DeviceType.TABLET: DevicePowerSpec(battery_wh=30.0, idle_w=0.3, max_w=8.0),
    DeviceType.LAPTOP: DevicePowerSpec(battery_wh=56.0, idle_w=1.7, max_w=23.6),
    DeviceType.DESKTOP: DevicePowerSpec(battery_wh=None, idle_w=35.0, max_w=150.0),
    DeviceType.RASPBERRY_PI: DevicePowerSpec(battery_wh=None, idle_w=2.7, max_w=6.4),
}
