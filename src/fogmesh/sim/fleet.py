"""Simulated devices: hardware by class, habits (charging, network, churn) and lazy advancing.

A ``SimDevice`` is not ticked. Its battery, shadow battery and temperature are advanced only when
something happens to it (a task starts or ends, it is plugged in, it goes offline, its view needs
refreshing) by ``advance(now)``, which applies the closed-form models of ``power`` and
``thermal`` over the whole interval at the interval's constant load. That is exact for the model
and is why 10,000 devices × 24 h is affordable.

The **shadow battery** runs the same device without fog work (same habits, same plug times): a
device was "pushed below 20 % by fog work" when its real battery is below 20 % while its shadow
is not.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Final

from fogmesh.devices.model import DeviceCapabilities, DeviceType, NetworkType
from fogmesh.sim.power import (
    PRESET_SPECS,
    BatteryLedger,
    BatteryState,
    DevicePowerSpec,
    power_w,
)
from fogmesh.sim.scenario import Scenario
from fogmesh.sim.thermal import THERMAL_SPECS, ThermalSpec, throttle_factor, time_to_temp

__all__ = [
    "HARDWARE",
    "DeviceEvent",
    "Hardware",
    "SimDevice",
    "build_fleet",
    "device_events",
]

_H: Final = 3600.0
_DAY: Final = 86400.0
HOT_C: Final = 55.0
_Add = Callable[[float, int, str], None]
CEILING_C: Final = 65.0


@dataclass(frozen=True, slots=True)
class Hardware:
    cores: int
    memory_mb: int
    speed: float  # relative per-core speed (the scheduler's estimate for the class)
    idle_load: float  # background load of the owner's own use at night
    day_load: float  # … and during the day (08:00–23:00)


# Typical 2023–24 devices (assumed): 8-core phones/tablets with 6 GB, 8-core 16 GB laptops,
# 12-core 32 GB desktops, 4-core 4 GB Raspberry Pi 4. Speeds match the scheduler's class table.
HARDWARE: Final[dict[DeviceType, Hardware]] = {
    DeviceType.SMARTPHONE: Hardware(8, 6144, 0.7, 0.01, 0.05),
    DeviceType.TABLET: Hardware(8, 6144, 0.8, 0.01, 0.04),
    DeviceType.LAPTOP: Hardware(8, 16384, 1.2, 0.02, 0.08),
    DeviceType.DESKTOP: Hardware(12, 32768, 1.5, 0.02, 0.05),
    DeviceType.RASPBERRY_PI: Hardware(4, 4096, 0.5, 0.05, 0.05),
}


class SimDevice:
    """One device's live state and its metric accumulators. Mutable; owned by the engine."""

    __slots__ = (
        "allowed_cores",
        "ambient_c",
        "below10",
        "below20",
        "bg_load",
        "busy_core_s",
        "busy_eligible_core_s",
        "cap_cores",
        "capabilities",
        "cores",
        "dead",
        "device_id",
        "device_type",
        "driven10",
        "driven20",
        "eligible_core_s",
        "eligible_ref_s",
        "energy_wh",
        "fog_battery_wh",
        "fog_cores",
        "fog_mains_wh",
        "fog_mem",
        "has_battery",
        "has_room",
        "hw",
        "hw_core_s",
        "idx",
        "ledger",
        "memory_mb",
        "metered",
        "network_type",
        "online",
        "plugged",
        "powered",
        "pspec",
        "refresh_version",
        "running",
        "s_above55",
        "s_above65",
        "shadow_ledger",
        "speed",
        "t_last",
        "t_rate",
        "task_s_above65",
        "temp_c",
        "throttle_events",
        "tspec",
        "view_soc",
        "view_temp",
    )

    def __init__(
        self,
        idx: int,
        device_type: DeviceType,
        *,
        soc: float,
        ambient_c: float,
        network_type: NetworkType,
    ) -> None:
        hw = HARDWARE[device_type]
        self.idx = idx
        self.device_id = f"d{idx:06d}"
        self.device_type = device_type
        self.hw = hw
        self.cores = hw.cores
        self.memory_mb = hw.memory_mb
        self.speed = hw.speed
        self.pspec: DevicePowerSpec = PRESET_SPECS[device_type]
        self.tspec: ThermalSpec = THERMAL_SPECS[device_type]
        self.capabilities = DeviceCapabilities(
            cpu_cores_logical=hw.cores,
            ram_total_mb=hw.memory_mb,
            has_battery=self.pspec.has_battery,
            has_gpu=False,
        )
        self.ambient_c = ambient_c
        self.has_battery = self.pspec.has_battery
        self.ledger = BatteryLedger(BatteryState.at(self.pspec, soc))
        self.shadow_ledger = BatteryLedger(BatteryState.at(self.pspec, soc))
        self.temp_c = ambient_c + self.tspec.c_per_w * power_w(self.pspec, hw.idle_load)
        self.t_last = 0.0
        self.bg_load = hw.idle_load
        self.fog_cores = 0.0
        self.fog_mem = 0
        # Fog cores the device's runner lets work use (fogmesh's agent enforces the policy's CPU
        # limit on running work; a battery-agnostic system does not limit it).
        self.cap_cores = float(hw.cores)
        # Cores the run's policy lets fog work use right now (set on every view change): the
        # denominator of "utilisation of eligible capacity".
        self.allowed_cores = 0.0
        self.has_room = False  # plugged or mains, reachable, with a free core (engine's count)
        self.t_rate = 0.0
        self.plugged = not self.pspec.has_battery
        self.powered = True  # False while failed / away (churn)
        self.dead = False  # battery empty and unplugged
        self.online = True  # reachable by the coordinator
        self.network_type = network_type
        self.metered = network_type is NetworkType.CELLULAR
        self.running: dict[str, tuple[float, int, float]] = {}  # task id → (cores, MB, s)
        self.refresh_version = 0
        self.view_soc = self.ledger.soc
        self.view_temp = self.temp_c
        # metrics
        self.energy_wh = 0.0  # Σ power × time
        self.fog_battery_wh = 0.0
        self.fog_mains_wh = 0.0
        self.s_above55 = 0.0
        self.s_above65 = 0.0
        self.task_s_above65 = 0.0
        self.throttle_events = 0
        self.eligible_core_s = 0.0  # Σ allowed cores × time
        self.eligible_ref_s = 0.0  # … × speed: reference core-seconds the policy allowed
        self.hw_core_s = 0.0  # Σ cores × time while reachable and powered
        self.busy_core_s = 0.0
        self.busy_eligible_core_s = 0.0  # busy cores within the allowed ones × time
        # below the level while the shadow battery is not (fog energy made the difference)
        self.below20 = False
        self.below10 = False
        # … and crossed it while fog work was running on it (fog work drove it there)
        self.driven20 = False
        self.driven10 = False

    @property
    def battery(self) -> BatteryState:
        return self.ledger.state()

    @property
    def shadow(self) -> BatteryState:
        """The same battery without fog work (same habits, same plug times)."""
        return self.shadow_ledger.state()

    @property
    def available(self) -> bool:
        """Can take work at all: on, reachable, not flat."""
        return self.powered and self.online and not self.dead

    @property
    def soc(self) -> float:
        return self.ledger.soc

    def fog_active(self) -> float:
        """Fog cores actually busy: the reservation, capped by the runner's CPU limit."""
        return min(self.fog_cores, self.cap_cores)

    def load(self) -> float:
        return min(1.0, self.bg_load + self.fog_active() / self.cores)

    def task_rate(self) -> float:
        """Reference-seconds of work each running task completes per second."""
        if not self.running or not (self.powered and self.online and not self.dead):
            return 0.0
        fog = self.fog_cores
        share = min(1.0, self.cap_cores / fog) if fog > 0 else 1.0
        tspec = self.tspec
        temp = self.temp_c
        # ``throttle_factor`` is 1 at or below its start: the common case needs no call.
        factor = 1.0 if temp <= tspec.throttle_start_c else throttle_factor(tspec, temp)
        return self.speed * factor * share

    def advance(self, now: float) -> None:
        """Bring the models up to ``now`` at the load held since the last call.

        The simulator's innermost call: the power and thermal formulas are written out here
        (each exactly as ``power_w``, ``battery_step`` and ``thermal_step`` compute it, so a run
        is bit-for-bit the one the plain functions give), and the exponential is taken once.
        """
        dt = now - self.t_last
        if dt <= 0:
            return
        self.t_last = now
        tspec = self.tspec
        if not self.powered or self.dead:
            if self.dead and self.plugged:
                self.dead = False
            watts = 0.0
        else:
            pspec = self.pspec
            active = min(self.fog_cores, self.cap_cores)
            bg = self.bg_load
            load = min(1.0, bg + active / self.cores)
            idle = pspec.idle_w
            span = pspec.max_w - idle
            watts = idle + span * min(1.0, max(0.0, load))
            bg_watts = idle + span * min(1.0, max(0.0, bg))
            demand = watts * dt / _H
            self.energy_wh += demand
            plugged = self.plugged
            ledger = self.ledger
            before_soc = ledger.soc
            before_supplied = ledger.load_from_battery_wh
            ledger.step(pspec, demand, dt, plugged, self.temp_c)
            self.shadow_ledger.step(pspec, bg_watts * dt / _H, dt, plugged, self.temp_c)
            fog_wh = (watts - bg_watts) * dt / _H
            on_battery = self.has_battery and not plugged
            if on_battery:
                # An empty battery stops supplying; the fog share shrinks with it.
                supplied = ledger.load_from_battery_wh - before_supplied
                self.fog_battery_wh += fog_wh * (supplied / demand if demand > 0 else 0.0)
            else:
                self.fog_mains_wh += fog_wh
            if self.online:
                self.hw_core_s += self.cores * dt
                allowed = self.allowed_cores
                if allowed > 0:
                    self.eligible_core_s += allowed * dt
                    self.eligible_ref_s += allowed * self.speed * dt
                    self.busy_eligible_core_s += min(active, allowed) * dt
            self.busy_core_s += active * dt
            if on_battery:
                soc, shadow = ledger.soc, self.shadow_ledger.soc
                if soc < 0.2 <= shadow:
                    self.below20 = True
                    if self.running and before_soc >= 0.2:
                        self.driven20 = True
                if soc < 0.1 <= shadow:
                    self.below10 = True
                    if self.running and before_soc >= 0.1:
                        self.driven10 = True
                if ledger.empty:
                    self.dead = True
        t0 = self.temp_c
        ambient = self.ambient_c
        target = ambient + tspec.c_per_w * watts
        t1 = target + (t0 - target) * math.exp(-dt / tspec.time_constant_s)
        # Below both thresholds at both ends the exponential path never reached them: most
        # devices, most of the time, skip the crossing arithmetic.
        if t0 >= HOT_C or t1 >= HOT_C:
            above65 = _seconds_above(tspec, t0, t1, watts, dt, CEILING_C, ambient)
            self.s_above65 += above65
            if self.running:
                self.task_s_above65 += above65 * len(self.running)
            self.s_above55 += _seconds_above(tspec, t0, t1, watts, dt, HOT_C, ambient)
        if t0 <= tspec.throttle_start_c < t1:
            self.throttle_events += 1
        self.temp_c = t1


def _seconds_above(
    spec: ThermalSpec,
    t0: float,
    t1: float,
    watts: float,
    dt: float,
    threshold: float,
    ambient: float,
) -> float:
    """Seconds of ``[0, dt]`` the exponential path from ``t0`` to ``t1`` spends at or above
    ``threshold``."""
    if t0 >= threshold and t1 >= threshold:
        return dt
    if t0 < threshold and t1 < threshold:
        return 0.0
    crossing = time_to_temp(spec, t0, watts, threshold, ambient)
    if crossing is None:  # numerically on the threshold
        return dt if t1 >= threshold else 0.0
    crossing = min(max(crossing, 0.0), dt)
    return dt - crossing if t1 >= threshold else crossing


@dataclass(frozen=True, slots=True, order=True)
class DeviceEvent:
    """A habit event: ``kind`` is plug, unplug, day, night, offline, online, fail or recover."""

    time: float
    idx: int
    kind: str


def build_fleet(scenario: Scenario, rng: random.Random) -> list[SimDevice]:
    """The fleet, classes in proportion to ``scenario.mix`` (largest-remainder rounding)."""
    total = sum(scenario.mix.values())
    types = [DeviceType(k) for k in sorted(scenario.mix)]
    exact = [scenario.devices * scenario.mix[t.value] / total for t in types]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(types)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: scenario.devices - sum(counts)]:
        counts[i] += 1
    classes = [t for t, n in zip(types, counts, strict=True) for _ in range(n)]
    rng.shuffle(classes)
    fleet: list[SimDevice] = []
    for idx, dtype in enumerate(classes):
        ambient = 25.0 + rng.uniform(-scenario.ambient_spread_c, scenario.ambient_spread_c)
        if dtype in (DeviceType.DESKTOP, DeviceType.RASPBERRY_PI):
            net = NetworkType.ETHERNET if rng.random() < 0.7 else NetworkType.WIFI
        else:
            net = NetworkType.WIFI
        soc = rng.uniform(0.3, 1.0)
        fleet.append(SimDevice(idx, dtype, soc=soc, ambient_c=ambient, network_type=net))
    return fleet


def device_events(
    fleet: list[SimDevice], scenario: Scenario, rng: random.Random
) -> list[DeviceEvent]:
    """Every habit event of the run, sorted by (time, device, kind)."""
    end = scenario.duration_s
    days = math.ceil(end / _DAY) + 1
    out: list[DeviceEvent] = []

    def add(t: float, idx: int, kind: str) -> None:
        if 0.0 < t < end:
            out.append(DeviceEvent(t, idx, kind))

    for dev in fleet:
        i = dev.idx
        for day in range(days):
            base = day * _DAY
            add(base + 8 * _H + rng.uniform(-_H, _H), i, "day")
            add(base + 23 * _H + rng.uniform(-_H, _H), i, "night")
        if dev.has_battery:
            docked = dev.device_type is DeviceType.LAPTOP and rng.random() < scenario.docked_laptops
            if docked:
                dev.plugged = True
            else:
                _charging_habit(dev, scenario, rng, add, days)
        _spells(
            i, scenario.offline_per_day, scenario.offline_mean_s, "offline", "online", rng, add, end
        )
        _spells(
            i, scenario.failures_per_day, scenario.failure_mean_s, "fail", "recover", rng, add, end
        )
    # The dataclass's own ordering, by key: the generated comparison is slow at 100k events.
    out.sort(key=attrgetter("time", "idx", "kind"))
    return out


def _charging_habit(
    dev: SimDevice, scenario: Scenario, rng: random.Random, add: _Add, days: int
) -> None:
    overnight = rng.random() < scenario.overnight_charging
    # Devices that charge overnight start the run on the charger (the run starts at midnight).
    if overnight:
        dev.plugged = True
    for day in range(days):
        base = day * _DAY
        if overnight:
            add(base + 7 * _H + rng.uniform(-_H, _H), dev.idx, "unplug")
            add(base + 23 * _H + rng.uniform(-_H, _H), dev.idx, "plug")
        n = _poisson(rng, scenario.plugins_per_day)
        for _ in range(n):
            start = base + rng.uniform(9 * _H, 20 * _H)
            add(start, dev.idx, "plug")
            add(start + rng.uniform(0.5 * _H, 1.5 * _H), dev.idx, "unplug")


def _spells(
    idx: int,
    per_day: float,
    mean_s: float,
    start_kind: str,
    end_kind: str,
    rng: random.Random,
    add: _Add,
    end: float,
) -> None:
    if per_day <= 0:
        return
    t = rng.expovariate(per_day / _DAY)
    while t < end:
        length = rng.expovariate(1.0 / mean_s)
        add(t, idx, start_kind)
        add(t + length, idx, end_kind)
        t += length + rng.expovariate(per_day / _DAY)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: means here are ~1, so the loop is short.
    limit = math.exp(-mean)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
