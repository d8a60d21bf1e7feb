"""Fleet simulator: battery, thermal and workload models driving the real scheduler and policy.

``power`` and ``thermal`` are pure models (no I/O, clock or randomness) shared with the agent's
emulated devices; ``fleet`` runs them under SimPy with the real ``fog.scheduler.place`` and
``mobile.policy.evaluate``. See docs/simulation.md.

This package root imports only the pure models and the scenario, so the agent's emulated devices
can use them without the ``sim`` extra (SimPy, matplotlib): the run itself is
``fogmesh.sim.engine.Simulation`` and the outputs ``fogmesh.sim.report``.
"""

from __future__ import annotations

from fogmesh.sim.power import (
    PRESET_SPECS,
    BatteryState,
    DevicePowerSpec,
    battery_step,
    charge_rate_per_h,
    power_w,
    time_to_soc,
)
from fogmesh.sim.scenario import Scenario, load_scenario
from fogmesh.sim.thermal import (
    THERMAL_SPECS,
    ThermalSpec,
    steady_state_c,
    thermal_step,
    throttle_factor,
    time_to_temp,
)

__all__ = [
    "PRESET_SPECS",
    "THERMAL_SPECS",
    "BatteryState",
    "DevicePowerSpec",
    "Scenario",
    "ThermalSpec",
    "battery_step",
    "charge_rate_per_h",
    "load_scenario",
    "power_w",
    "steady_state_c",
    "thermal_step",
    "throttle_factor",
    "time_to_soc",
    "time_to_temp",
]
