"""The simulator's fast paths compute exactly what the plain model functions compute.

``SimDevice.advance`` writes the power, battery and thermal formulas out inline and advances a
``BatteryLedger`` in place; the engine finds a device's next refresh level by bisection. A run
must be bit-for-bit the one the plain functions give, so these compare with ``==``, not approx.
"""

from __future__ import annotations

import gc
import math
import random
from bisect import bisect_left, bisect_right

import pytest

from fogmesh.devices.model import DeviceType, NetworkType
from fogmesh.sim import engine
from fogmesh.sim.engine import Simulation
from fogmesh.sim.fleet import CEILING_C, HOT_C, SimDevice
from fogmesh.sim.power import PRESET_SPECS, BatteryLedger, BatteryState, battery_step, power_w
from fogmesh.sim.scenario import Scenario
from fogmesh.sim.thermal import ThermalSpec, thermal_step, time_to_temp


def _seconds_above(
    spec: ThermalSpec, t0: float, watts: float, dt: float, threshold: float, ambient: float
) -> float:
    t1 = thermal_step(spec, t0, watts, dt, ambient)
    if t0 >= threshold and t1 >= threshold:
        return dt
    if t0 < threshold and t1 < threshold:
        return 0.0
    crossing = time_to_temp(spec, t0, watts, threshold, ambient)
    if crossing is None:
        return dt if t1 >= threshold else 0.0
    crossing = min(max(crossing, 0.0), dt)
    return dt - crossing if t1 >= threshold else crossing


class PlainDevice:
    """The device model written with the public functions only (the reference)."""

    def __init__(self, dev: SimDevice) -> None:
        self.dev = dev
        self.battery = dev.battery
        self.shadow = dev.shadow
        self.temp_c = dev.temp_c
        self.energy_wh = self.fog_battery_wh = self.fog_mains_wh = 0.0
        self.s_above55 = self.s_above65 = self.task_s_above65 = 0.0
        self.throttle_events = 0

    def advance(self, dt: float, load: float, bg_load: float, plugged: bool, tasks: int) -> None:
        dev = self.dev
        watts = power_w(dev.pspec, load)
        bg_watts = power_w(dev.pspec, bg_load)
        self.energy_wh += watts * dt / 3600.0
        before = self.battery
        self.battery = battery_step(dev.pspec, before, load, dt, plugged, self.temp_c)
        self.shadow = battery_step(dev.pspec, self.shadow, bg_load, dt, plugged, self.temp_c)
        fog_wh = (watts - bg_watts) * dt / 3600.0
        if dev.has_battery and not plugged:
            supplied = self.battery.load_from_battery_wh - before.load_from_battery_wh
            demand = watts * dt / 3600.0
            self.fog_battery_wh += fog_wh * (supplied / demand if demand > 0 else 0.0)
        else:
            self.fog_mains_wh += fog_wh
        t0, amb, spec = self.temp_c, dev.ambient_c, dev.tspec
        t1 = thermal_step(spec, t0, watts, dt, amb)
        above65 = _seconds_above(spec, t0, watts, dt, CEILING_C, amb)
        self.s_above65 += above65
        self.task_s_above65 += above65 * tasks
        self.s_above55 += _seconds_above(spec, t0, watts, dt, HOT_C, amb)
        if t0 <= spec.throttle_start_c < t1:
            self.throttle_events += 1
        self.temp_c = t1


@pytest.mark.parametrize("dtype", list(DeviceType))
def test_advance_is_bit_for_bit_the_plain_model(dtype: DeviceType) -> None:
    rng = random.Random(f"advance:{dtype.value}")
    dev = SimDevice(0, dtype, soc=0.9, ambient_c=27.0, network_type=NetworkType.WIFI)
    plain = PlainDevice(dev)
    t = 0.0
    for step in range(400):
        # Random load, plug state and interval lengths, hot and cold, short and hours long.
        dev.plugged = (not dev.has_battery) or rng.random() < 0.4
        dev.bg_load = rng.choice([0.01, 0.05, 0.3])
        dev.fog_cores = rng.choice([0.0, 1.0, 4.0, 8.0, 12.0])
        dev.cap_cores = rng.choice([float(dev.cores), dev.cores * 0.6])
        dev.running = {f"t{i}": (1.0, 256, 60.0) for i in range(int(dev.fog_cores))}
        load = dev.load()
        dt = rng.choice([0.5, 30.0, 600.0, 7200.0])
        t += dt
        plain.advance(dt, load, dev.bg_load, dev.plugged, len(dev.running))
        dev.advance(t)
        assert dev.battery == plain.battery, step
        assert dev.shadow == plain.shadow, step
        for name in (
            "temp_c",
            "energy_wh",
            "fog_battery_wh",
            "fog_mains_wh",
            "s_above55",
            "s_above65",
            "task_s_above65",
            "throttle_events",
        ):
            assert getattr(dev, name) == getattr(plain, name), (step, name)
        if dev.dead:  # flat: the reference stops here as the device does
            break
    if dtype is DeviceType.SMARTPHONE:  # the hot branches were exercised, not just skipped
        assert dev.s_above55 > 0 and dev.s_above65 > 0


def test_ledger_step_is_battery_step() -> None:
    rng = random.Random(5)
    for dtype in (DeviceType.SMARTPHONE, DeviceType.LAPTOP, DeviceType.DESKTOP):
        spec = PRESET_SPECS[dtype]
        state = BatteryState.at(spec, 0.4)
        ledger = BatteryLedger(state)
        for _ in range(300):
            load, dt = rng.random(), rng.choice([1.0, 60.0, 3600.0])
            plugged, temp = rng.random() < 0.5, rng.choice([20.0, 47.0, 55.0])
            state = battery_step(spec, state, load, dt, plugged, temp)
            ledger.step(spec, power_w(spec, load) * dt / 3600.0, dt, plugged, temp)
            assert ledger.state() == state
            assert ledger.soc == state.soc and ledger.empty == state.empty


def test_next_refresh_level_by_bisection_is_the_nearest_mark() -> None:
    rng = random.Random(9)
    marks = engine._SOC_MARKS
    for _ in range(5000):
        x = rng.choice([rng.random(), rng.choice(marks), rng.choice(marks) + 1e-10])
        step = 0.05
        up = min([x + step, *(m for m in marks if m > x + engine._EPS)])
        i = bisect_right(marks, x + engine._EPS)
        fast_up = marks[i] if i < len(marks) and marks[i] < x + step else x + step
        down = max([x - step, *(m for m in marks if m < x - engine._EPS)])
        j = bisect_left(marks, x - engine._EPS) - 1
        fast_down = marks[j] if j >= 0 and marks[j] > x - step else x - step
        assert (fast_up, fast_down) == (up, down)


def test_arrivals_join_in_order_and_the_collector_is_restored() -> None:
    scenario = Scenario(devices=30, hours=3, seed=2)
    was = gc.isenabled()
    sim = Simulation(scenario, "fogmesh")
    data = sim.run()
    assert gc.isenabled() is was
    assert [t.spec for t in data.tasks] == sim.specs  # every arrival, in arrival order
    for t in data.tasks:
        if t.first_start is not None:
            # decided at the first round after it arrived, or later
            first_round = math.ceil(t.spec.arrival / scenario.round_s) * scenario.round_s
            assert t.first_start >= first_round - 1e-9
