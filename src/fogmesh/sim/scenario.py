"""A simulation scenario: the fleet, its habits and the workload, as one validated value.

``Scenario()`` is the default of issue 6 (1,000 mixed devices, 24 h, offered load ≈ 60 % of the
eligible capacity). ``load_scenario(path)`` reads a JSON or TOML file whose keys are the field
names below; an unknown key or a bad value raises ``ConfigError`` naming the field.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fogmesh.devices.model import DeviceType
from fogmesh.errors import ConfigError

__all__ = ["DEFAULT_MIX", "Scenario", "load_scenario"]

# Share of each class in the fleet: a household-and-office mix, mostly phones and laptops.
DEFAULT_MIX: dict[str, float] = {
    DeviceType.SMARTPHONE.value: 0.40,
    DeviceType.TABLET.value: 0.10,
    DeviceType.LAPTOP.value: 0.25,
    DeviceType.DESKTOP.value: 0.15,
    DeviceType.RASPBERRY_PI.value: 0.10,
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """Every knob of a run. Times are seconds; the run starts at local midnight."""

    devices: int = 1000
    hours: float = 24.0
    seed: int = 1
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    # Offered work as a share of the fleet's eligible core capacity (averaged over the day).
    load: float = 0.6
    # Peak-to-mean swing of the day/night arrival pattern (0 = flat); peak at 14:00.
    diurnal_amplitude: float = 0.5
    mean_task_s: float = 1800.0
    # Share of tasks with a deadline, and the deadline as a multiple of the task's duration.
    deadline_share: float = 0.5
    deadline_slack: float = 4.0
    # How often the coordinator runs a placement round.
    round_s: float = 30.0
    # A device's view (battery %, °C) is refreshed when it moves by this much, and exactly when
    # it crosses a level a rule reads (policy bands and their hysteresis, floor, ceiling, …).
    refresh_battery_pct: float = 5.0
    refresh_temp_c: float = 5.0
    # Habits: share of battery devices plugged in overnight, daytime plug-ins per day.
    overnight_charging: float = 0.8
    plugins_per_day: float = 1.0
    # Share of laptops docked on mains all day.
    docked_laptops: float = 0.3
    # Offline spells and churn (failures) per device per day, and their mean length.
    offline_per_day: float = 1.0
    offline_mean_s: float = 1200.0
    failures_per_day: float = 0.02
    failure_mean_s: float = 4 * 3600.0
    # Ambient temperature spread between devices (± °C around the class ambient).
    ambient_spread_c: float = 5.0

    def __post_init__(self) -> None:
        _positive_int(self, "devices")
        _positive(self, "hours")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError("must be an integer", field="seed")
        known = {t.value for t in DeviceType}
        if not isinstance(self.mix, dict) or not self.mix:
            raise ConfigError("must be a table of device type → share", field="mix")
        for key, share in self.mix.items():
            if key not in known:
                raise ConfigError(f"unknown device type {key!r}", field=f"mix.{key}")
            if not _is_number(share) or share < 0:
                raise ConfigError("must be a number ≥ 0", field=f"mix.{key}")
        if sum(self.mix.values()) <= 0:
            raise ConfigError("shares must not all be 0", field="mix")
        for name in ("load", "mean_task_s", "deadline_slack", "round_s"):
            _positive(self, name)
        for name in ("refresh_battery_pct", "refresh_temp_c", "offline_mean_s", "failure_mean_s"):
            _positive(self, name)
        for name in ("diurnal_amplitude", "deadline_share", "overnight_charging", "docked_laptops"):
            _fraction(self, name)
        for name in ("plugins_per_day", "offline_per_day", "failures_per_day", "ambient_spread_c"):
            _non_negative(self, name)

    @property
    def duration_s(self) -> float:
        return self.hours * 3600.0

    def with_changes(self, **changes: Any) -> Scenario:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        if not isinstance(data, dict):
            raise ConfigError("a scenario must be a table of settings", field="scenario")
        names = {f.name for f in fields(cls)}
        for key in data:
            if key not in names:
                raise ConfigError(f"unknown setting {key!r}", field=str(key))
        return cls(**data)


def load_scenario(path: str | Path, **overrides: Any) -> Scenario:
    """Read a ``.json`` or ``.toml`` scenario; ``overrides`` (e.g. from the CLI) win."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read scenario file {p}: {exc.strerror}", field="scenario"
        ) from exc
    try:
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}", field="scenario"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError("a scenario must be a table of settings", field="scenario")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return Scenario.from_dict(data)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _positive(s: Scenario, name: str) -> None:
    v = getattr(s, name)
    if not _is_number(v) or v <= 0:
        raise ConfigError(f"must be a number > 0, not {v!r}", field=name)


def _positive_int(s: Scenario, name: str) -> None:
    v = getattr(s, name)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ConfigError(f"must be an integer > 0, not {v!r}", field=name)


def _non_negative(s: Scenario, name: str) -> None:
    v = getattr(s, name)
    if not _is_number(v) or v < 0:
        raise ConfigError(f"must be a number ≥ 0, not {v!r}", field=name)


def _fraction(s: Scenario, name: str) -> None:
    v = getattr(s, name)
    if not _is_number(v) or not 0 <= v <= 1:
        raise ConfigError(f"must be a number in [0, 1], not {v!r}", field=name)
