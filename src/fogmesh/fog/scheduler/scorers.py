"""Soft preferences: among devices that may take a task, which is best? Each score is in [0, 1].

==========  ===================================================================================
scorer      formula
==========  ===================================================================================
capacity    u = mean(cpu after / cpu cap, memory after / memory cap); binpack: u, spread: 1 − u
power       mains: 1.0; charging battery: b × charging_bonus × battery_scale;
            unplugged battery: b × battery_scale   (b = battery % / 100)
thermal     (ceiling − °C) / (ceiling − comfort) clipped to [0, 1]; platform level
            nominal 1, light 0.75, moderate 0.5, severe 0.25, critical 0; both known: the lower;
            neither: unknown_thermal_score
network     input < large_input_mb: 1.0; else link (ethernet 1, wifi 0.8, cellular 0.4,
            unknown 0.5, none 0) × (0.5 if metered)
speed       s / (s + reference_speed)   (s = per-core speed, 1.0 = a 2 GHz core)
model       task uses no model or it is deployed: 1.0; else 0.0
==========  ===================================================================================

The seed's rules live here, once each: charging is worth exactly ``charging_bonus`` (1.5×) over
the same unplugged charge at every level — ``battery_scale × charging_bonus ≤ 1`` is enforced by
the config, so no ``min(1, …)`` cap can swallow the bonus as it did in the original; mains (1.0)
beats any battery (≤ 0.9); heat is penalised by the thermal scorer only (the filter's ceiling is a
hard limit, not a second penalty).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from fogmesh.devices.model import NetworkType, ThermalLevel
from fogmesh.fog.scheduler.base import Reservations, Scorer, TaskNeed, cpu_bound, mem_bound
from fogmesh.fog.scheduler.config import CapacityMode
from fogmesh.fog.scheduler.snapshot import PowerSource

if TYPE_CHECKING:
    from fogmesh.fog.scheduler.config import SchedulerConfig
    from fogmesh.fog.scheduler.snapshot import NodeView

__all__ = [
    "CapacityScorer",
    "ModelScorer",
    "NetworkScorer",
    "PowerScorer",
    "SpeedScorer",
    "ThermalScorer",
    "default_scorers",
]

_MAINS = PowerSource.MAINS
_CHARGING = PowerSource.CHARGING


class CapacityScorer(Scorer):
    name = "capacity"

    def __init__(self, config: SchedulerConfig) -> None:
        self.spread = config.capacity_mode is CapacityMode.SPREAD

    def _utilisation(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        e = ctx.extra.get(node.device_id)
        if e is None:
            cpu, mem = node.cpu_used, float(node.mem_used)
        else:
            cpu, mem = cpu_bound(node, e), mem_bound(node, e)
        cap_c, cap_m = node.cpu_cap, node.mem_cap
        u_cpu = (cpu + need.cpu) / cap_c if cap_c > 0 else 1.0
        u_mem = (mem + need.mem) / cap_m if cap_m > 0 else 1.0
        u = (u_cpu + u_mem) * 0.5
        return 0.0 if u < 0.0 else 1.0 if u > 1.0 else u

    def score(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        u = self._utilisation(node, need, ctx)
        return 1.0 - u if self.spread else u

    def reason(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> str:
        u = self._utilisation(node, need, ctx)
        if self.spread:
            return f"spread: 1 − utilisation after {u:.2f} = {1.0 - u:.2f}"
        return f"binpack: utilisation after placing = {u:.2f}"


class PowerScorer(Scorer):
    """Battery level and power source in one score, so neither is counted twice."""

    name = "power"
    node_only = True

    def __init__(self, config: SchedulerConfig) -> None:
        self.bonus = config.charging_bonus
        self.scale = config.battery_scale

    def score(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        power = node.power
        if power is _MAINS:
            return 1.0
        pct = node.battery_percent
        b = 0.0 if pct is None else pct * 0.01
        if power is _CHARGING:
            return b * self.bonus * self.scale
        return b * self.scale

    def reason(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> str:
        value = self.score(node, need, ctx)
        if node.power is _MAINS:
            return "mains power = 1.0"
        pct = node.battery_percent
        b = 0.0 if pct is None else pct * 0.01
        if node.power is _CHARGING:
            return f"battery {b:.2f} × charging {self.bonus:g} × scale {self.scale:g} = {value:.3g}"
        return f"battery {b:.2f} × unplugged 1 × scale {self.scale:g} = {value:.3g}"


_LEVEL_SCORE: Final = {
    ThermalLevel.NOMINAL: 1.0,
    ThermalLevel.LIGHT: 0.75,
    ThermalLevel.MODERATE: 0.5,
    ThermalLevel.SEVERE: 0.25,
    ThermalLevel.CRITICAL: 0.0,
}


class ThermalScorer(Scorer):
    name = "thermal"
    node_only = True

    def __init__(self, config: SchedulerConfig) -> None:
        self.ceiling = config.thermal_ceiling_c
        self.comfort = config.thermal_comfort_c
        self.span = config.thermal_ceiling_c - config.thermal_comfort_c
        self.unknown = config.unknown_thermal_score

    def score(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        temp = node.cpu_temp_c
        level = node.thermal_level
        if temp is None:
            return self.unknown if level is None else _LEVEL_SCORE[level]
        h = (self.ceiling - temp) / self.span
        h = 0.0 if h < 0.0 else 1.0 if h > 1.0 else h
        if level is not None:
            by_level = _LEVEL_SCORE[level]
            if by_level < h:
                return by_level
        return h

    def reason(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> str:
        value = self.score(node, need, ctx)
        parts = []
        if node.cpu_temp_c is not None:
            parts.append(
                f"({self.ceiling:g} − {node.cpu_temp_c:g} °C) / ({self.ceiling:g} − "
                f"{self.comfort:g}) clipped"
            )
        if node.thermal_level is not None:
            parts.append(f"platform {node.thermal_level.name.lower()}")
        if not parts:
            return f"no thermal reading = {value:g}"
        return f"{' and '.join(parts)} → {value:.3g}"


_LINK_SCORE: Final = {
    NetworkType.ETHERNET: 1.0,
    NetworkType.WIFI: 0.8,
    NetworkType.CELLULAR: 0.4,
    NetworkType.NONE: 0.0,
}
_UNKNOWN_LINK: Final = 0.5
_METERED_FACTOR: Final = 0.5


class NetworkScorer(Scorer):
    name = "network"

    def __init__(self, config: SchedulerConfig) -> None:
        self.large_mb = config.large_input_mb

    def constant_for(self, need: TaskNeed) -> float | None:
        return None if need.large_input else 1.0

    def score(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        if not need.large_input:
            return 1.0
        link = node.network_type
        base = _UNKNOWN_LINK if link is None else _LINK_SCORE[link]
        return base * _METERED_FACTOR if node.is_metered else base

    def reason(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> str:
        if not need.large_input:
            return f"input {need.input_mb:g} MB < {self.large_mb:g} MB: network cost ignored"
        link = node.network_type
        base = _UNKNOWN_LINK if link is None else _LINK_SCORE[link]
        name = "unknown" if link is None else link.value
        value = self.score(node, need, ctx)
        if node.is_metered:
            return (
                f"{need.input_mb:g} MB over {name} {base:g} × metered {_METERED_FACTOR:g} "
                f"= {value:g}"
            )
        return f"{need.input_mb:g} MB over unmetered {name} = {value:g}"


class SpeedScorer(Scorer):
    name = "speed"
    node_only = True

    def __init__(self, config: SchedulerConfig) -> None:
        self.ref = config.reference_speed

    def score(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        s = node.speed
        return s / (s + self.ref)

    def reason(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> str:
        s = node.speed
        return f"speed {s:g} / ({s:g} + {self.ref:g}) = {self.score(node, need, ctx):.3g}"


class ModelScorer(Scorer):
    name = "model"

    def constant_for(self, need: TaskNeed) -> float | None:
        return 1.0 if need.model_hint is None else None

    def score(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        model = need.model_hint
        if model is None or model in node.deployed_models:
            return 1.0
        return 0.0

    def reason(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> str:
        model = need.model_hint
        if model is None:
            return "task uses no model = 1.0"
        if model in node.deployed_models:
            return f"model {model!r} already deployed = 1.0"
        return f"model {model!r} would have to be transferred = 0.0"


def default_scorers(config: SchedulerConfig) -> tuple[tuple[Scorer, float], ...]:
    """Each scorer with its weight; zero-weight scorers are left out of the hot path."""
    w = config.weights
    pairs: tuple[tuple[Scorer, float], ...] = (
        (CapacityScorer(config), w.capacity),
        (PowerScorer(config), w.power),
        (ThermalScorer(config), w.thermal),
        (NetworkScorer(config), w.network),
        (SpeedScorer(config), w.speed),
        (ModelScorer(), w.model),
    )
    return tuple((s, weight) for s, weight in pairs if weight > 0)
