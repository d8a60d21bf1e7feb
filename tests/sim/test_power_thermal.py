"""Calibration of the pure power and thermal models: the arithmetic equals the parameters."""

from __future__ import annotations

import math

import pytest

from fogmesh.devices.model import DeviceType
from fogmesh.sim.power import (
    PRESET_SPECS,
    BatteryState,
    DevicePowerSpec,
    battery_step,
    charge_rate_per_h,
    power_w,
    time_to_soc,
)
from fogmesh.sim.thermal import (
    THERMAL_SPECS,
    ThermalSpec,
    steady_state_c,
    thermal_step,
    throttle_factor,
    time_to_temp,
)

PHONE = PRESET_SPECS[DeviceType.SMARTPHONE]


def test_phone_at_full_load_empties_in_5_7_hours() -> None:
    # 18.75 Wh / 3.3 W = 5.682 h
    seconds = time_to_soc(PHONE, BatteryState.full(PHONE), 1.0, False, 30.0, 0.0)
    assert seconds == pytest.approx(18.75 / 3.3 * 3600)
    assert seconds is not None and 5.6 < seconds / 3600 < 5.8
    state = battery_step(PHONE, BatteryState.full(PHONE), 1.0, seconds, False, 30.0)
    assert state.energy_wh == pytest.approx(0.0, abs=1e-9)
    assert state.load_from_battery_wh == pytest.approx(18.75)
    assert state.unmet_wh == pytest.approx(0.0, abs=1e-9)


def test_draw_is_linear_between_idle_and_max() -> None:
    laptop = PRESET_SPECS[DeviceType.LAPTOP]
    assert power_w(laptop, 0.0) == pytest.approx(1.7)
    assert power_w(laptop, 1.0) == pytest.approx(23.6)
    assert power_w(laptop, 0.5) == pytest.approx(1.7 + 0.5 * 21.9)
    assert power_w(laptop, 2.0) == pytest.approx(23.6)  # clipped


def test_empty_battery_counts_unmet_demand() -> None:
    # 1 Wh left, 3.3 W for 1 h: 1 Wh drawn, 2.3 Wh unmet
    state = battery_step(
        PHONE, BatteryState(energy_wh=1.0, capacity_wh=18.75), 1.0, 3600, False, 25
    )
    assert state.load_from_battery_wh == pytest.approx(1.0)
    assert state.unmet_wh == pytest.approx(2.3)
    assert state.empty


def test_charging_reaches_half_in_30_minutes_then_tapers() -> None:
    empty = BatteryState.at(PHONE, 0.0)
    half = battery_step(PHONE, empty, 0.0, 1800, True, 30.0)
    assert half.soc == pytest.approx(0.5)
    # taper: 1 − soc = 0.5 × e^(−k t), k = 1 / (1 − 0.5) = 2 per hour; after 1 more hour 1 − 0.5e^−2
    later = battery_step(PHONE, half, 0.0, 3600, True, 30.0)
    assert later.soc == pytest.approx(1 - 0.5 * math.exp(-2.0))
    assert charge_rate_per_h(PHONE, 0.75, 30.0) == pytest.approx(0.5)
    # wall energy = stored / efficiency; the load came from the wall, not the battery
    assert later.charge_from_mains_wh == pytest.approx(later.charged_wh / 0.9)
    assert later.load_from_battery_wh == 0.0
    assert later.load_from_mains_wh == pytest.approx(0.078 * 1.5)


def test_coarse_charging_step_equals_many_small_steps() -> None:
    coarse = battery_step(PHONE, BatteryState.at(PHONE, 0.1), 0.3, 5400, True, 30.0)
    fine = BatteryState.at(PHONE, 0.1)
    for _ in range(540):
        fine = battery_step(PHONE, fine, 0.3, 10, True, 30.0)
    assert coarse.soc == pytest.approx(fine.soc, rel=1e-9)
    assert coarse.load_from_mains_wh == pytest.approx(fine.load_from_mains_wh, rel=1e-9)


@pytest.mark.parametrize(
    ("temp_c", "soc_after_10_min"),
    [
        (30.0, 1 / 6),  # 1 C: 10 min = 1/6 of capacity
        (47.0, 1 / 12),  # JEITA warm: half rate
        (51.0, 0.0),  # JEITA: stopped above 50 °C
        (-1.0, 0.0),  # stopped below 0 °C
    ],
)
def test_jeita_rules(temp_c: float, soc_after_10_min: float) -> None:
    state = battery_step(PHONE, BatteryState.at(PHONE, 0.0), 0.0, 600, True, temp_c)
    assert state.soc == pytest.approx(soc_after_10_min)


def test_time_to_soc_matches_the_charge_curve() -> None:
    start = BatteryState.at(PHONE, 0.2)
    t = time_to_soc(PHONE, start, 0.0, True, 30.0, 0.9)
    assert t is not None
    assert battery_step(PHONE, start, 0.0, t, True, 30.0).soc == pytest.approx(0.9)
    assert time_to_soc(PHONE, start, 0.0, True, 51.0, 0.9) is None  # JEITA stopped
    assert time_to_soc(PHONE, start, 0.0, True, 30.0, 1.0) is None  # only approached
    assert time_to_soc(PRESET_SPECS[DeviceType.DESKTOP], start, 1.0, False, 30.0, 0.1) is None


def test_mains_only_device_draws_from_the_wall() -> None:
    pi = PRESET_SPECS[DeviceType.RASPBERRY_PI]
    state = battery_step(pi, BatteryState.full(pi), 1.0, 3600, False, 40.0)
    assert state.load_from_mains_wh == pytest.approx(6.4)
    assert state.load_from_battery_wh == 0.0
    assert state.soc == 1.0


def test_specs_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        DevicePowerSpec(battery_wh=0.0, idle_w=1, max_w=2)
    with pytest.raises(ValueError):
        DevicePowerSpec(battery_wh=10, idle_w=3, max_w=2)
    with pytest.raises(ValueError):
        ThermalSpec(25, 1, 0, 50, 60)
    with pytest.raises(ValueError):
        battery_step(PHONE, BatteryState.full(PHONE), 0.0, -1, False, 25)


@pytest.mark.parametrize("device_type", list(DeviceType))
def test_thermal_steady_state_is_the_analytic_value(device_type: DeviceType) -> None:
    spec = THERMAL_SPECS[device_type]
    watts = PRESET_SPECS[device_type].max_w
    expected = spec.ambient_c + spec.c_per_w * watts
    assert steady_state_c(spec, watts) == pytest.approx(expected)
    temp = spec.ambient_c
    for _ in range(200):
        temp = thermal_step(spec, temp, watts, spec.time_constant_s / 10)
    assert temp == pytest.approx(expected, abs=1e-6)


def test_thermal_step_is_exact_over_one_time_constant() -> None:
    phone = THERMAL_SPECS[DeviceType.SMARTPHONE]
    # 25 °C → steady 25 + 13 × 3.3 = 67.9 °C; after τ: 67.9 − 42.9 e^−1
    t = thermal_step(phone, 25.0, 3.3, phone.time_constant_s)
    assert t == pytest.approx(67.9 - 42.9 * math.exp(-1))
    crossing = time_to_temp(phone, 25.0, 3.3, 55.0)
    assert crossing is not None
    assert thermal_step(phone, 25.0, 3.3, crossing) == pytest.approx(55.0)
    assert time_to_temp(phone, 25.0, 0.5, 55.0) is None  # settles below 55 °C
    cooling = time_to_temp(phone, 60.0, 0.0, 40.0)
    assert cooling is not None and thermal_step(phone, 60.0, 0.0, cooling) == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("temp_c", "factor"), [(40.0, 1.0), (55.0, 1.0), (62.5, 0.75), (80.0, 0.5)]
)
def test_phone_throttle_curve(temp_c: float, factor: float) -> None:
    # linear from 1.0 at 55 °C to 0.5 at 70 °C: 62.5 °C is half way → 0.75
    assert throttle_factor(THERMAL_SPECS[DeviceType.SMARTPHONE], temp_c) == pytest.approx(factor)
