"""``ResourcePolicy``: every threshold and limit the mobile policy uses, validated once.

A policy is immutable. Construction checks types, ranges and orderings and raises
``ConfigError`` naming the offending field and the rule it breaks; it then pre-computes the
lookup tables ``evaluate`` uses, so an evaluation is a handful of comparisons and tuple lookups.
docs/mobile.md explains every value.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fogmesh.devices.model import DeviceType, PlatformThermal
from fogmesh.errors import ConfigError
from fogmesh.mobile.chunking import ChunkingConfig
from fogmesh.mobile.modes import PowerMode
from fogmesh.mobile.reasons import ReasonTexts, compile_reason_texts

__all__ = ["DEFAULT_POLICY", "ResourcePolicy"]

_MB_PER_GB = 1024
_MOBILE_TYPES = frozenset({DeviceType.SMARTPHONE, DeviceType.TABLET})


@dataclass(frozen=True, slots=True)
class _Tables:
    """What ``evaluate`` looks up instead of recomputing per call."""

    battery: tuple[float, float, float]  # critical, low, conservative (%)
    battery_leave: tuple[float, float, float]  # the same + hysteresis band
    thermal: tuple[float, float, float]  # warm, hot, critical (°C)
    thermal_leave: tuple[float, float, float]  # the same − hysteresis band
    platform: dict[tuple[str, int], int]  # (platform, status) → ThermalBand
    memory_mb: tuple[float, float]  # critical, low (MB available)
    memory_leave_mb: tuple[float, float]  # the same + hysteresis band
    latency_high_ms: float
    latency_leave_ms: float
    cpu_by_battery: tuple[float, float, float, float]  # by effective BatteryBand
    cpu_by_thermal: tuple[float, float, float, float]  # by ThermalBand
    modes: tuple[PowerMode, PowerMode, PowerMode, PowerMode]  # by severity
    memory_by_mode: tuple[int | None, int | None, int | None, int | None]
    tasks_by_mode: tuple[int, int, int, int]
    texts: ReasonTexts
    chunks: dict[tuple[DeviceType, int, int, int], ChunkingConfig]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourcePolicy:
    """Thresholds (battery %, °C, GB), CPU/memory limits, chunk sizes and transport rules."""

    # battery: a band applies at or below its threshold (seed: ≤ 10 / ≤ 20 / ≤ 40 %)
    battery_critical: float = 10.0
    battery_low: float = 20.0
    battery_conservative: float = 40.0
    # temperature: a band applies at or above its threshold (seed: 45 / 55 / 65 °C)
    thermal_warm: float = 45.0
    thermal_hot: float = 55.0
    thermal_critical: float = 65.0
    # platform thermal status (ThermalLevel 1–4) that counts as warm / hot / critical
    platform_warm_level: int = 1  # LIGHT (android 1, ios fair)
    platform_hot_level: int = 3  # SEVERE (android 3, ios serious)
    platform_critical_level: int = 4  # CRITICAL (android ≥ 4, ios critical)
    # available RAM below which memory is under pressure
    memory_low_gb: float = 1.0
    memory_critical_gb: float = 0.25
    # hysteresis: how far a reading must move back past a threshold to leave its band
    battery_hysteresis_pct: float = 2.0
    thermal_hysteresis_c: float = 2.0
    memory_hysteresis_mb: float = 128.0
    latency_hysteresis_ms: float = 50.0
    # CPU limits (% of the device's capacity); the strictest applicable one wins
    cpu_limit_conservative_battery: float = 60.0
    cpu_limit_low_battery: float = 35.0
    cpu_limit_critical_battery: float = 20.0
    cpu_limit_warm: float = 60.0
    cpu_limit_hot: float = 30.0
    cpu_limit_critical_thermal: float = 15.0
    cpu_limit_low_power_mode: float = 35.0
    # memory limit per task (MB) by power mode; under memory pressure a fraction of what's free
    memory_limit_power_save_mb: int = 512
    memory_limit_critical_mb: int = 256
    memory_low_fraction: float = 0.5
    # concurrent tasks by power mode (also capped by logical cores); 0 admits no new work
    max_tasks_performance: int = 8
    max_tasks_balanced: int = 4
    max_tasks_power_save: int = 1
    max_tasks_critical: int = 0
    max_tasks_memory_low: int = 1  # cap while available RAM is low
    max_tasks_memory_critical: int = 0  # cap while it is critically low
    # chunking (bytes): the seed's 64–2048 range, 64–512 on smartphones and tablets
    chunk_min_bytes: int = 64
    chunk_max_bytes: int = 2048
    chunk_max_mobile_bytes: int = 512
    chunk_base_smartphone: int = 512
    chunk_base_tablet: int = 512
    chunk_base_raspberry_pi: int = 1024
    chunk_base_laptop: int = 2048
    chunk_base_desktop: int = 2048
    chunk_pressure_divisor: float = 2.0
    # transport
    high_latency_ms: float = 300.0  # internet latency above this counts as slow
    mesh_max_message_bytes: int = 16384  # larger messages leave the mesh when allowed
    mesh_small_message_bytes: int = 1024  # "balanced" sends messages up to this over the mesh
    urgent_priority: int = 7  # TaskPriority scale: LOW 1, NORMAL 3, HIGH 7, CRITICAL 10

    _tables: _Tables = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in _POLICY_FIELDS:
            kind, low, high, open_low = _LIMITS[f.name]
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _checked(f.name, value, kind, low, high, open_low))
        for chain, strict in _ORDER_RULES:
            self._check_chain(chain, strict)
        if self.latency_hysteresis_ms >= self.high_latency_ms:
            raise ConfigError(
                f"must be < high_latency_ms ({self.high_latency_ms:g}), or slow links never "
                "count as fast again",
                field="latency_hysteresis_ms",
            )
        object.__setattr__(self, "_tables", _build_tables(self))

    def _check_chain(self, chain: tuple[str, ...], strict: bool) -> None:
        op = "<" if strict else "≤"
        rule = f" {op} ".join(chain)
        for a, b in itertools.pairwise(chain):
            va, vb = getattr(self, a), getattr(self, b)
            if va < vb or (not strict and va == vb):
                continue
            # Blame the field the caller changed: with battery_low=5 the fault is battery_low,
            # not the untouched battery_critical=10.
            changed_b = vb != _DEFAULTS[b] and va == _DEFAULTS[a]
            name, other, other_value = (b, a, va) if changed_b else (a, b, vb)
            relation = (">" if strict else "≥") if changed_b else op
            raise ConfigError(
                f"must be {relation} {other} ({other_value:g}); rule: {rule}", field=name
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResourcePolicy:
        """Build from a mapping (a config file section); unknown keys are a ``ConfigError``."""
        for key in data:
            if key not in _LIMITS:
                raise ConfigError(f"unknown policy setting {key!r}", field=str(key))
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in _POLICY_FIELDS}


def _checked(name: str, value: Any, kind: type, low: float, high: float, open_low: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"must be {'an integer' if kind is int else 'a number'}, not {value!r}", field=name
        )
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"must be an integer, not {value!r}", field=name)
    if not math.isfinite(value):
        raise ConfigError(f"must be finite, not {value!r}", field=name)
    below = value <= low if open_low else value < low
    if below or value > high:
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}]"
        raise ConfigError(f"must be in {interval}, not {value!r}", field=name)
    return float(value) if kind is float else value


# name → (kind, low, high, is the low bound exclusive)
_LIMITS: dict[str, tuple[type, float, float, bool]] = {
    "battery_critical": (float, 0, 100, False),
    "battery_low": (float, 0, 100, False),
    "battery_conservative": (float, 0, 100, False),
    "thermal_warm": (float, 0, 150, True),
    "thermal_hot": (float, 0, 150, True),
    "thermal_critical": (float, 0, 150, True),
    "platform_warm_level": (int, 1, 4, False),
    "platform_hot_level": (int, 1, 4, False),
    "platform_critical_level": (int, 1, 4, False),
    "memory_low_gb": (float, 0, 1024, True),
    "memory_critical_gb": (float, 0, 1024, False),
    "battery_hysteresis_pct": (float, 0, 10, False),
    "thermal_hysteresis_c": (float, 0, 10, False),
    "memory_hysteresis_mb": (float, 0, 4096, False),
    "latency_hysteresis_ms": (float, 0, 10_000, False),
    "cpu_limit_conservative_battery": (float, 0, 100, True),
    "cpu_limit_low_battery": (float, 0, 100, True),
    "cpu_limit_critical_battery": (float, 0, 100, True),
    "cpu_limit_warm": (float, 0, 100, True),
    "cpu_limit_hot": (float, 0, 100, True),
    "cpu_limit_critical_thermal": (float, 0, 100, True),
    "cpu_limit_low_power_mode": (float, 0, 100, True),
    "memory_limit_power_save_mb": (int, 1, 1 << 20, False),
    "memory_limit_critical_mb": (int, 1, 1 << 20, False),
    "memory_low_fraction": (float, 0, 1, True),
    "max_tasks_performance": (int, 1, 1024, False),
    "max_tasks_balanced": (int, 0, 1024, False),
    "max_tasks_power_save": (int, 0, 1024, False),
    "max_tasks_critical": (int, 0, 1024, False),
    "max_tasks_memory_low": (int, 0, 1024, False),
    "max_tasks_memory_critical": (int, 0, 1024, False),
    "chunk_min_bytes": (int, 1, 1 << 20, False),
    "chunk_max_bytes": (int, 1, 1 << 20, False),
    "chunk_max_mobile_bytes": (int, 1, 1 << 20, False),
    "chunk_base_smartphone": (int, 1, 1 << 20, False),
    "chunk_base_tablet": (int, 1, 1 << 20, False),
    "chunk_base_raspberry_pi": (int, 1, 1 << 20, False),
    "chunk_base_laptop": (int, 1, 1 << 20, False),
    "chunk_base_desktop": (int, 1, 1 << 20, False),
    "chunk_pressure_divisor": (float, 1, 16, False),
    "high_latency_ms": (float, 0, 60_000, True),
    "mesh_max_message_bytes": (int, 1, 1 << 30, False),
    "mesh_small_message_bytes": (int, 0, 1 << 30, False),
    "urgent_priority": (int, 1, 10, False),
}

_ORDER_RULES: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("battery_critical", "battery_low", "battery_conservative"), True),
    (("thermal_warm", "thermal_hot", "thermal_critical"), True),
    (("platform_warm_level", "platform_hot_level", "platform_critical_level"), True),
    (("memory_critical_gb", "memory_low_gb"), True),
    (
        ("cpu_limit_critical_battery", "cpu_limit_low_battery", "cpu_limit_conservative_battery"),
        False,
    ),
    (("cpu_limit_critical_thermal", "cpu_limit_hot", "cpu_limit_warm"), False),
    (("memory_limit_critical_mb", "memory_limit_power_save_mb"), False),
    (
        (
            "max_tasks_critical",
            "max_tasks_power_save",
            "max_tasks_balanced",
            "max_tasks_performance",
        ),
        False,
    ),
    (("max_tasks_memory_critical", "max_tasks_memory_low"), False),
    (("chunk_min_bytes", "chunk_max_mobile_bytes", "chunk_max_bytes"), False),
    (("chunk_min_bytes", "chunk_base_smartphone", "chunk_max_mobile_bytes"), False),
    (("chunk_min_bytes", "chunk_base_tablet", "chunk_max_mobile_bytes"), False),
    (("chunk_min_bytes", "chunk_base_raspberry_pi", "chunk_max_bytes"), False),
    (("chunk_min_bytes", "chunk_base_laptop", "chunk_max_bytes"), False),
    (("chunk_min_bytes", "chunk_base_desktop", "chunk_max_bytes"), False),
    (("mesh_small_message_bytes", "mesh_max_message_bytes"), False),
)

_POLICY_FIELDS = tuple(f for f in dataclasses.fields(ResourcePolicy) if f.init)
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in _POLICY_FIELDS}
assert set(_LIMITS) == set(_DEFAULTS), "every policy field needs a range"


def _build_tables(p: ResourcePolicy) -> _Tables:
    bases = {
        DeviceType.SMARTPHONE: p.chunk_base_smartphone,
        DeviceType.TABLET: p.chunk_base_tablet,
        DeviceType.RASPBERRY_PI: p.chunk_base_raspberry_pi,
        DeviceType.LAPTOP: p.chunk_base_laptop,
        DeviceType.DESKTOP: p.chunk_base_desktop,
    }
    chunks: dict[tuple[DeviceType, int, int, int], ChunkingConfig] = {}
    for device_type, base in bases.items():
        ceiling = p.chunk_max_mobile_bytes if device_type in _MOBILE_TYPES else p.chunk_max_bytes
        for b in range(4):
            for t in range(4):
                for m in range(3):
                    chunks[(device_type, b, t, m)] = ChunkingConfig(
                        base_chunk_size=base,
                        min_chunk_size=p.chunk_min_bytes,
                        max_chunk_size=ceiling,
                        battery_pressure=b,
                        thermal_pressure=t,
                        memory_pressure=m,
                        pressure_divisor=p.chunk_pressure_divisor,
                    )
    hb, ht, hm = p.battery_hysteresis_pct, p.thermal_hysteresis_c, p.memory_hysteresis_mb
    mem = (p.memory_critical_gb * _MB_PER_GB, p.memory_low_gb * _MB_PER_GB)
    levels = (p.platform_warm_level, p.platform_hot_level, p.platform_critical_level)
    platform: dict[tuple[str, int], int] = {}
    for os_name, top in (("android", 6), ("ios", 3)):
        for status in range(top + 1):
            level = PlatformThermal(os_name, status).level  # type: ignore[arg-type]
            platform[(os_name, status)] = sum(level >= at for at in levels)
    return _Tables(
        battery=(p.battery_critical, p.battery_low, p.battery_conservative),
        battery_leave=(p.battery_critical + hb, p.battery_low + hb, p.battery_conservative + hb),
        thermal=(p.thermal_warm, p.thermal_hot, p.thermal_critical),
        thermal_leave=(p.thermal_warm - ht, p.thermal_hot - ht, p.thermal_critical - ht),
        platform=platform,
        memory_mb=mem,
        memory_leave_mb=(mem[0] + hm, mem[1] + hm),
        latency_high_ms=p.high_latency_ms,
        latency_leave_ms=p.high_latency_ms - p.latency_hysteresis_ms,
        cpu_by_battery=(
            100.0,
            p.cpu_limit_conservative_battery,
            p.cpu_limit_low_battery,
            p.cpu_limit_critical_battery,
        ),
        cpu_by_thermal=(100.0, p.cpu_limit_warm, p.cpu_limit_hot, p.cpu_limit_critical_thermal),
        modes=(PowerMode.PERFORMANCE, PowerMode.BALANCED, PowerMode.POWER_SAVE, PowerMode.CRITICAL),
        memory_by_mode=(None, None, p.memory_limit_power_save_mb, p.memory_limit_critical_mb),
        tasks_by_mode=(
            p.max_tasks_performance,
            p.max_tasks_balanced,
            p.max_tasks_power_save,
            p.max_tasks_critical,
        ),
        texts=compile_reason_texts(p),
        chunks=chunks,
    )


DEFAULT_POLICY = ResourcePolicy()
