"""Hysteresis: a band is entered at its threshold and left only past threshold ± band.

Default bands: battery 2 points, temperature 2 °C, available RAM 128 MB, latency 50 ms. So the
low battery band (≤ 20 %) is held up to 22 % and left above it; hot (≥ 55 °C) is held down to
53 °C and left below it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mobile_factories import phone

from fogmesh.devices.model import DeviceProfile, PlatformThermal
from fogmesh.mobile import PowerMode, ResourceOptimization, ResourcePolicy, evaluate

P = ResourcePolicy()


def run(readings: list[DeviceProfile], hysteresis: bool = True) -> list[ResourceOptimization]:
    out: list[ResourceOptimization] = []
    previous = None
    for profile in readings:
        previous = evaluate(profile, P, previous if hysteresis else None)
        out.append(previous)
    return out


def modes(opts: list[ResourceOptimization]) -> list[str]:
    return [o.power_mode.value for o in opts]


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        # enter low at 20; 21 and 22 are within 20 + 2 → held; 22.1 > 22 → leaves to balanced
        ([20.0, 21.0, 22.0, 22.1], ["power_save", "power_save", "power_save", "balanced"]),
        # entering a worse band is immediate: 20.1 → 20 switches at once
        ([20.1, 20.0], ["balanced", "power_save"]),
        # critical held up to 12; at 12.5 it is left, but only as far as 12.5 allows (low band)
        ([10.0, 12.0, 12.5], ["critical", "critical", "power_save"]),
        # a big jump leaves several bands at once: 9 → 50 is past every band edge
        ([9.0, 50.0], ["critical", "performance"]),
        # conservative held up to 42
        ([40.0, 42.0, 42.1], ["balanced", "balanced", "performance"]),
    ],
)
def test_battery_band_edges(readings: list[float], expected: list[str]) -> None:
    assert modes(run([phone(battery_percent=r) for r in readings])) == expected


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        # enter hot at 55; 54 and 53 ≥ 55 − 2 → held; 52.9 < 53 → leaves to warm (balanced)
        ([55.0, 54.0, 53.0, 52.9], ["power_save", "power_save", "power_save", "balanced"]),
        # critical held down to 63
        ([65.0, 63.0, 62.9], ["critical", "critical", "power_save"]),
        # warm held down to 43
        ([45.0, 43.0, 42.9], ["balanced", "balanced", "performance"]),
    ],
)
def test_thermal_band_edges(readings: list[float], expected: list[str]) -> None:
    assert modes(run([phone(cpu_temp_c=r) for r in readings])) == expected


def test_held_reason_says_until_when() -> None:
    held = run([phone(battery_percent=20.0), phone(battery_percent=21.5)])[-1]
    (battery,) = [r for r in held.reasons if r.code == "battery_low"]
    assert battery.text == (
        "battery 21.5% held in the low band until > 22%, not charging → power_save, CPU ≤ 35%"
    )


def test_memory_band_holds_until_128_mb_past() -> None:
    # low below 1024 MB; held while < 1024 + 128 = 1152
    opts = run([phone(ram_available_mb=m) for m in (1000, 1100, 1151, 1152)])
    assert [o.max_concurrent_tasks for o in opts] == [1, 1, 1, 8]


def test_latency_band_holds_until_50_ms_below() -> None:
    # slow above 300 ms; held while > 300 − 50 = 250
    opts = run([phone(latency_ms=ms) for ms in (301.0, 260.0, 250.0)])
    assert [o.transport_preference.value for o in opts] == [
        "balanced",
        "balanced",
        "betanet_preferred",
    ]


def test_platform_status_has_no_added_band() -> None:
    # the OS smooths its own status; dropping from SEVERE to NOMINAL is taken at once
    opts = run(
        [
            phone(platform_thermal=PlatformThermal("android", 3)),
            phone(platform_thermal=PlatformThermal("android", 0)),
        ]
    )
    assert modes(opts) == ["power_save", "performance"]


def test_without_previous_the_same_readings_flap() -> None:
    # The control for the property below: the raw readings do cross the threshold.
    readings = [phone(battery_percent=r) for r in (20.0, 21.0, 19.5, 21.9, 20.0)]
    assert len(set(modes(run(readings, hysteresis=False)))) == 2
    assert len(set(modes(run(readings)))) == 1


@given(st.lists(st.floats(min_value=10.01, max_value=22.0), min_size=1, max_size=30))
def test_no_flapping_inside_the_low_battery_band(tail: list[float]) -> None:
    # once in low (entered at 20), any reading in (critical 10, 20 + 2] keeps power_save
    opts = run([phone(battery_percent=20.0)] + [phone(battery_percent=r) for r in tail])
    assert {o.power_mode for o in opts} == {PowerMode.POWER_SAVE}


@given(st.lists(st.floats(min_value=53.0, max_value=64.99), min_size=1, max_size=30))
def test_no_flapping_inside_the_hot_band(tail: list[float]) -> None:
    opts = run([phone(cpu_temp_c=55.0)] + [phone(cpu_temp_c=t) for t in tail])
    assert {o.power_mode for o in opts} == {PowerMode.POWER_SAVE}
    assert {o.cpu_limit_percent for o in opts} == {30}


def test_zero_band_policy_follows_the_raw_reading() -> None:
    sharp = ResourcePolicy(battery_hysteresis_pct=0)
    first = evaluate(phone(battery_percent=20.0), sharp)
    second = evaluate(phone(battery_percent=20.1), sharp, first)
    assert (first.power_mode, second.power_mode) == (PowerMode.POWER_SAVE, PowerMode.BALANCED)
