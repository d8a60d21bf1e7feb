"""Emulated devices whose battery and temperature follow the work the agent really does.

``PoweredEmulatedSensors`` is a ``SensorSource``: it starts from a ``DeviceProfile`` (a class
preset or a profile file) and, on every ``read()``, advances the pure battery model
(``fogmesh.sim.power``) and thermal model (``fogmesh.sim.thermal``) from the previous reading to
now. The load over that interval is the CPU time the agent's tasks actually consumed, reported
through ``record_work(cpu_s)`` and divided by ``interval × the emulated device's cores``.

``MeteredRunner`` wraps the real ``TaskRunner`` and calls ``record_work`` with each outcome's
measured ``cpu_s``, so neither the daemon nor the runner needs to know about emulation. A task's
CPU time is therefore counted when it ends; a burst bigger than the interval can hold (load > 1)
is carried into the following intervals rather than dropped, so the energy is conserved.

Energy bookkeeping (``energy()``, and ``energy.json`` if ``energy_file`` is given) separates
what the load drew from the battery from what came from the wall (load while plugged in or on a
mains-only device, plus what the charger took). docs/emulation.md says what is real and what is
modelled.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fogmesh.agent.daemon import Runner
from fogmesh.agent.runner import RunLimits, RunOutcome
from fogmesh.clock import Clock, WallClock
from fogmesh.devices.classify import Classification
from fogmesh.devices.emulated import preset, resolve_profile
from fogmesh.devices.model import Accepts, DeviceCapabilities, DeviceProfile, DeviceType
from fogmesh.errors import ConfigError
from fogmesh.fog.tasks import Task
from fogmesh.sim.power import PRESET_SPECS, BatteryState, DevicePowerSpec, battery_step, power_w
from fogmesh.sim.thermal import THERMAL_SPECS, ThermalSpec, steady_state_c, thermal_step

__all__ = [
    "EMULATE_CLASSES",
    "EnergyReport",
    "MeteredRunner",
    "PoweredEmulatedSensors",
    "emulated_device",
]

# CLI name → (device class, starting preset). The presets are the quiet member of each class;
# the battery, plug and temperature they start with are overridable.
EMULATE_CLASSES: Final[dict[str, tuple[DeviceType, str]]] = {
    "phone": (DeviceType.SMARTPHONE, "phone-charging"),
    "tablet": (DeviceType.TABLET, "tablet-charging"),
    "laptop": (DeviceType.LAPTOP, "laptop-on-battery"),
    "desktop": (DeviceType.DESKTOP, "desktop"),
    "raspberry_pi": (DeviceType.RASPBERRY_PI, "raspberry-pi"),
}

# JEITA depends on the temperature, which moves within an interval; sub-steps this long keep
# that coupling close while a long gap between readings still costs only a few hundred steps.
_MAX_STEP_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class EnergyReport:
    """Energy since the emulator started, in Wh."""

    battery_wh: float  # the load drawn from the battery
    mains_load_wh: float  # the load drawn from the wall (plugged in, or no battery)
    charger_wh: float  # what the charger took from the wall to store ``charged_wh``
    charged_wh: float
    unmet_wh: float  # demanded after the battery was empty (a real device would be off)
    cpu_s: float  # task CPU time accounted so far

    @property
    def mains_wh(self) -> float:
        """Everything that came from the wall."""
        return self.mains_load_wh + self.charger_wh

    def to_dict(self) -> dict[str, float]:
        return {
            "battery_wh": self.battery_wh,
            "mains_wh": self.mains_wh,
            "mains_load_wh": self.mains_load_wh,
            "charger_wh": self.charger_wh,
            "charged_wh": self.charged_wh,
            "unmet_wh": self.unmet_wh,
            "cpu_s": self.cpu_s,
        }


class PoweredEmulatedSensors:
    """A sensor source whose battery, plug state and temperature come from the pure models."""

    def __init__(
        self,
        profile: DeviceProfile,
        power: DevicePowerSpec,
        thermal: ThermalSpec,
        *,
        plugged: bool = False,
        ambient_c: float | None = None,
        clock: Clock | None = None,
        label: str | None = None,
        energy_file: Path | None = None,
    ) -> None:
        if power.has_battery and profile.capabilities.has_battery is False:
            raise ConfigError("the profile has no battery but its class has one", field="profile")
        if not power.has_battery and (plugged or profile.battery_percent is not None):
            raise ConfigError("a mains-only device has no battery to charge", field="profile")
        cores = profile.capabilities.cpu_cores_logical
        if not cores:
            raise ConfigError("needs capabilities.cpu_cores_logical", field="profile")
        self._cores = cores
        self._profile = profile
        self.power = power
        self.thermal = thermal
        self.plugged = plugged and power.has_battery
        self.ambient_c = thermal.ambient_c if ambient_c is None else ambient_c
        self._clock: Clock = clock if clock is not None else WallClock()
        self.label = label or f"emulated {profile.device_type.value} (power model)"
        self._energy_file = energy_file
        soc = (profile.battery_percent if profile.battery_percent is not None else 100.0) / 100
        self._battery = BatteryState.at(power, soc)
        idle_c = steady_state_c(thermal, power_w(power, 0.0), self.ambient_c)
        self._temp_c = profile.cpu_temp_c if profile.cpu_temp_c is not None else idle_c
        self._last = self._clock.monotonic()
        self._load = 0.0
        self._pending_cpu_s = 0.0  # recorded but not yet spread over an interval
        self._accounted_cpu_s = 0.0
        self._lock = threading.Lock()

    # -- the hook ----------------------------------------------------------------------------
    def record_work(self, cpu_s: float) -> None:
        """Count CPU seconds the agent's work used; they load the next interval(s)."""
        if cpu_s > 0:
            with self._lock:
                self._pending_cpu_s += cpu_s

    # -- SensorSource ------------------------------------------------------------------------
    def capabilities(self) -> DeviceCapabilities:
        return self._profile.capabilities

    def classification(self) -> Classification:
        kind = self._profile.device_type
        return Classification(kind, "profile", f"set to {kind.value} by {self.label}")

    def read(self) -> DeviceProfile:
        with self._lock:
            self._advance()
            if self._energy_file is not None:
                self._write_energy(self._energy())  # under the lock: one writer at a time
            return self._current()

    # -- state -------------------------------------------------------------------------------
    @property
    def battery(self) -> BatteryState:
        return self._battery

    @property
    def temp_c(self) -> float:
        return self._temp_c

    @property
    def load(self) -> float:
        """Load fraction of the last interval."""
        return self._load

    def set_plugged(self, plugged: bool) -> None:
        """Plug in or unplug from now on (the interval so far is settled first)."""
        with self._lock:
            self._advance()
            self.plugged = plugged and self.power.has_battery

    def energy(self) -> EnergyReport:
        with self._lock:
            return self._energy()

    def _energy(self) -> EnergyReport:
        b = self._battery
        return EnergyReport(
            battery_wh=b.load_from_battery_wh,
            mains_load_wh=b.load_from_mains_wh,
            charger_wh=b.charge_from_mains_wh,
            charged_wh=b.charged_wh,
            unmet_wh=b.unmet_wh,
            cpu_s=self._accounted_cpu_s,
        )

    def _advance(self) -> None:
        now = self._clock.monotonic()
        dt = now - self._last
        if dt <= 0:
            return
        self._last = now
        capacity_cpu_s = dt * self._cores
        used = min(self._pending_cpu_s, capacity_cpu_s)
        self._pending_cpu_s -= used
        self._accounted_cpu_s += used
        self._load = used / capacity_cpu_s
        watts = power_w(self.power, self._load)
        left = dt
        while left > 0:
            step = min(left, _MAX_STEP_S)
            # JEITA judges the charge by the temperature at the start of each sub-step.
            self._battery = battery_step(
                self.power, self._battery, self._load, step, self.plugged, self._temp_c
            )
            self._temp_c = thermal_step(self.thermal, self._temp_c, watts, step, self.ambient_c)
            left -= step

    def _current(self) -> DeviceProfile:
        changes: dict[str, Any] = {
            "timestamp": self._clock.time(),
            "cpu_temp_c": self._temp_c,
            # The policy trusts a platform status over °C; an emulator has no OS to ask, so the
            # modelled temperature must be what it judges.
            "platform_thermal": None,
            "cpu_percent": 100.0 * self._load,
        }
        if self.power.has_battery:
            changes["battery_percent"] = self._battery.percent
            changes["charging"] = self.plugged  # a full phone on its charger is still on mains
        return self._profile.replace(**changes)

    def _write_energy(self, energy: EnergyReport) -> None:
        assert self._energy_file is not None
        data = {
            **energy.to_dict(),
            "device_type": self._profile.device_type.value,
            "battery_percent": self._battery.percent if self.power.has_battery else None,
            "cpu_temp_c": self._temp_c,
            "plugged": self.plugged,
        }
        tmp = self._energy_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self._energy_file)
        except OSError:
            pass  # bookkeeping for the demo must never stop the agent


def emulated_device(
    kind: str,
    *,
    profile: str | None = None,
    battery: float | None = None,
    charging: bool = False,
    ambient_c: float | None = None,
    clock: Clock | None = None,
    energy_file: Path | None = None,
) -> PoweredEmulatedSensors:
    """The sensor source ``fogmesh agent --emulate KIND`` uses.

    ``profile`` (a preset name or JSON/TOML file) replaces the class's starting preset; the
    power and thermal parameters always come from ``kind``.
    """
    if kind not in EMULATE_CLASSES:
        known = ", ".join(EMULATE_CLASSES)
        raise ConfigError(f"unknown device class {kind!r} (known: {known})", field="--emulate")
    device_type, preset_name = EMULATE_CLASSES[kind]
    if profile:
        start, label = resolve_profile(profile)
    else:
        start, label = preset(preset_name), f"preset {preset_name}"
    power = PRESET_SPECS[device_type]
    if battery is not None:
        if not power.has_battery:
            raise ConfigError(f"a {kind} has no battery", field="--battery")
        if not 0 <= battery <= 100:
            raise ConfigError(f"must be 0–100, not {battery:g}", field="--battery")
        start = start.replace(battery_percent=battery)
    if charging and not power.has_battery:
        raise ConfigError(f"a {kind} has no battery to charge", field="--charging")
    if ambient_c is not None and not -40.0 <= ambient_c <= 60.0:  # also rejects NaN
        raise ConfigError(f"must be -40–60 °C, not {ambient_c:g}", field="--ambient")
    return PoweredEmulatedSensors(
        start.replace(charging=charging if power.has_battery else None),
        power,
        THERMAL_SPECS[device_type],
        plugged=charging,
        ambient_c=ambient_c,
        clock=clock,
        label=f"emulated {kind} ({label}, power model)",
        energy_file=energy_file,
    )


class MeteredRunner:
    """Passes everything to ``inner`` and reports each outcome's measured CPU to ``sensors``."""

    def __init__(self, inner: Runner, sensors: PoweredEmulatedSensors) -> None:
        self.inner = inner
        self.sensors = sensors

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def run(
        self,
        task: Task,
        limits: RunLimits,
        *,
        on_start: Callable[[], None] | None = None,
        running_cap: int | None = None,
    ) -> RunOutcome:
        outcome = await self.inner.run(task, limits, on_start=on_start, running_cap=running_cap)
        self.sensors.record_work(outcome.cpu_s)
        return outcome

    async def cancel(self, task_id: str) -> bool:
        return await self.inner.cancel(task_id)

    def capabilities(self) -> dict[str, Any]:
        return self.inner.capabilities()

    def accepts(self) -> Accepts | None:
        return self.inner.accepts()
