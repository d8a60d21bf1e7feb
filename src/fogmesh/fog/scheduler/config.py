"""Scheduler settings: scorer weights, bin-pack or spread, thresholds, aging, sampling.

A config is immutable and validated once; ``ConfigError`` names the offending field. Every
default is explained in docs/scheduler.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import StrEnum

from fogmesh.devices.model import ThermalLevel
from fogmesh.errors import ConfigError
from fogmesh.fog.tasks import TaskPriority

__all__ = ["DEFAULT_CONFIG", "CapacityMode", "SchedulerConfig", "Weights"]


class CapacityMode(StrEnum):
    BINPACK = "binpack"  # fill busy devices first: idle ones stay idle (cool, asleep, charged)
    SPREAD = "spread"  # put work where the most room is left: lower latency, less heat per device


@dataclass(frozen=True, slots=True, kw_only=True)
class Weights:
    """Relative weight of each scorer; a weight of 0 switches that scorer off."""

    capacity: float = 1.0
    power: float = 2.0
    thermal: float = 1.5
    network: float = 1.0
    speed: float = 1.0
    model: float = 1.5

    def __post_init__(self) -> None:
        total = 0.0
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"must be a number, not {value!r}", field=f"weights.{f.name}")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"must be finite and ≥ 0, not {value!r}", field=f"weights.{f.name}"
                )
            total += value
        if total <= 0:
            raise ConfigError("at least one weight must be > 0", field="weights")

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerConfig:
    weights: Weights = field(default_factory=Weights)
    capacity_mode: CapacityMode = CapacityMode.BINPACK

    # hard limits (filters)
    battery_floor_percent: float = 20.0  # unplugged battery devices below this get no work
    # An unplugged battery must stay this far above the floor once the energy of the new task and
    # of the work already leased there is drawn (owner's own use meanwhile, estimate error).
    battery_reserve_percent: float = 3.0
    # Node-pressure eviction (kubelet's pattern): work on an unplugged battery that has fallen
    # to floor + this is stopped and requeued, so fog work never takes a battery below the floor
    # (e.g. a task placed while charging whose device was then unplugged).
    battery_evict_margin_percent: float = 1.0
    thermal_ceiling_c: float = 65.0  # the seed's "critical thermal"
    thermal_level_ceiling: ThermalLevel = ThermalLevel.SEVERE
    long_task_s: float = 300.0  # a task this long or longer is "long"
    long_task_min_battery_percent: float = 60.0  # … and needs this much charge when unplugged
    max_tasks_per_node: int | None = None  # fleet-wide cap on top of each device's own policy
    # A task expected to take at most this long may be leased to a device whose slots are full,
    # to wait in the agent's queue (NodeView.queue_cap places): tiny tasks then flow without a
    # coordinator round trip per task. 0 turns queueing off.
    queue_task_max_s: float = 2.0

    # scoring
    charging_bonus: float = 1.5  # the seed's rule
    battery_scale: float = 0.6  # unplugged full battery scores this; mains scores 1.0
    thermal_comfort_c: float = 40.0  # at or below: full thermal score
    unknown_thermal_score: float = 0.7
    large_input_mb: float = 10.0  # inputs at least this big make network cost count
    reference_speed: float = 1.0  # a device of this speed scores 0.5

    # ordering
    aging_interval_s: float = 60.0  # one priority point gained per interval waited
    aging_cap: float = 9.5  # aged ordinary work never overtakes CRITICAL (10)

    # preemption
    preemption: bool = True
    preemptible_max_priority: TaskPriority = TaskPriority.NORMAL

    # sampling
    sample_k: int | None = 8  # feasible candidates to compare; None = full scan (baseline)
    max_probes: int = 128  # random draws before falling back to a full scan
    scan_below: int = 48  # sources this small are scanned, not sampled

    # explanations
    explain_runners_up: int = 2
    explain_rejected: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.weights, Weights):
            raise ConfigError("must be a Weights", field="weights")
        try:
            object.__setattr__(self, "capacity_mode", CapacityMode(self.capacity_mode))
        except ValueError:
            raise ConfigError(
                f"must be 'binpack' or 'spread', not {self.capacity_mode!r}", field="capacity_mode"
            ) from None
        _number(self, "battery_floor_percent", 0, 100)
        _number(self, "battery_reserve_percent", 0, 100)
        _number(self, "battery_evict_margin_percent", 0, 100)
        _number(self, "thermal_ceiling_c", 0, 150, open_low=True)
        _number(self, "long_task_s", 0, 7 * 24 * 3600, open_low=True)
        _number(self, "long_task_min_battery_percent", 0, 100)
        _number(self, "queue_task_max_s", 0, 3600)
        _number(self, "charging_bonus", 1, 10)
        _number(self, "battery_scale", 0, 1, open_low=True)
        if self.battery_scale * self.charging_bonus > 1.0:
            # Otherwise a charging battery would need a min(1, …) cap, which is what hid the
            # bonus in the original.
            raise ConfigError(
                f"battery_scale × charging_bonus must be ≤ 1 "
                f"({self.battery_scale:g} × {self.charging_bonus:g})",
                field="battery_scale",
            )
        _number(self, "thermal_comfort_c", -50, 150)
        if self.thermal_comfort_c >= self.thermal_ceiling_c:
            raise ConfigError("must be < thermal_ceiling_c", field="thermal_comfort_c")
        _number(self, "unknown_thermal_score", 0, 1)
        _number(self, "large_input_mb", 0, 1 << 30)
        _number(self, "reference_speed", 0, 1000, open_low=True)
        _number(self, "aging_interval_s", 0, 1e9, open_low=True)
        _number(self, "aging_cap", 0, float(TaskPriority.CRITICAL))
        if self.aging_cap >= TaskPriority.CRITICAL:
            raise ConfigError("must be < 10 (CRITICAL)", field="aging_cap")
        object.__setattr__(self, "thermal_level_ceiling", ThermalLevel(self.thermal_level_ceiling))
        object.__setattr__(
            self, "preemptible_max_priority", TaskPriority(self.preemptible_max_priority)
        )
        if self.preemptible_max_priority >= TaskPriority.CRITICAL:
            raise ConfigError("CRITICAL work is never preempted", field="preemptible_max_priority")
        _count(self, "max_tasks_per_node", 1, optional=True)
        _count(self, "sample_k", 1, optional=True)
        _count(self, "max_probes", 1)
        _count(self, "scan_below", 0)
        _count(self, "explain_runners_up", 0)
        _count(self, "explain_rejected", 0)


def _number(
    cfg: SchedulerConfig, name: str, low: float, high: float, open_low: bool = False
) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"must be a finite number, not {value!r}", field=name)
    if (value <= low if open_low else value < low) or value > high:
        raise ConfigError(
            f"must be in {'(' if open_low else '['}{low:g}, {high:g}], not {value!r}", field=name
        )
    object.__setattr__(cfg, name, float(value))


def _count(cfg: SchedulerConfig, name: str, low: int, optional: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"must be an integer ≥ {low}, not {value!r}", field=name)


DEFAULT_CONFIG = SchedulerConfig()
