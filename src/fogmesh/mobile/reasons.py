"""The wording of every reason ``evaluate`` gives, compiled once per policy.

Everything that depends only on the policy (thresholds, limits, mode names) is formatted here,
so an evaluation only formats the live reading into a prepared sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fogmesh.devices.model import PlatformThermal
from fogmesh.mobile.modes import Reason

if TYPE_CHECKING:
    from fogmesh.mobile.thresholds import ResourcePolicy

__all__ = ["ReasonTexts", "compile_reason_texts"]

BATTERY_NAMES = ("normal", "conservative", "low", "critical")
THERMAL_NAMES = ("normal", "warm", "hot", "critical")
MODE_NAMES = ("performance", "balanced", "power_save", "critical")


@dataclass(frozen=True, slots=True)
class ReasonTexts:
    # [band][charging][held] → (code, text after "battery N%")
    battery: tuple[tuple[tuple[tuple[str, str], ...], ...], ...]
    # [band][held] → (code, text after "CPU N °C")
    thermal: tuple[tuple[tuple[str, str], ...], ...]
    # (platform, status) → the whole reason, or absent when that status is no constraint
    platform: dict[tuple[str, int], Reason]
    # [band][held] → (code, text after "available RAM N MB")
    memory: tuple[tuple[tuple[str, str], ...], ...]
    modes: tuple[Reason | None, Reason | None, Reason | None, Reason | None]
    low_power: Reason
    mobile_chunk: Reason


def _tasks(n: int) -> str:
    return "no new tasks" if n == 0 else f"≤ {n} task{'s' if n != 1 else ''} at a time"


def compile_reason_texts(p: ResourcePolicy) -> ReasonTexts:
    battery_at = (0.0, p.battery_conservative, p.battery_low, p.battery_critical)
    hb = p.battery_hysteresis_pct
    battery_cpu = (
        100.0,
        p.cpu_limit_conservative_battery,
        p.cpu_limit_low_battery,
        p.cpu_limit_critical_battery,
    )
    battery: list[tuple[tuple[tuple[str, str], ...], ...]] = [((("", ""), ("", "")),) * 2]
    for band in (1, 2, 3):
        name = BATTERY_NAMES[band]
        where = (
            f"% ≤ {name} {battery_at[band]:g}%",
            f"% held in the {name} band until > {battery_at[band] + hb:g}%",
        )
        eff = band - 1
        not_charging = tuple(
            (
                f"battery_{name}",
                f"{w}, not charging → {MODE_NAMES[band]}, CPU ≤ {battery_cpu[band]:g}%",
            )
            for w in where
        )
        charging = tuple(
            (
                f"battery_{name}_charging",
                f"{w}, charging: treated as {BATTERY_NAMES[eff]} → {MODE_NAMES[eff]}"
                + (f", CPU ≤ {battery_cpu[eff]:g}%" if eff else ", no battery limit"),
            )
            for w in where
        )
        battery.append((not_charging, charging))

    thermal_at = (0.0, p.thermal_warm, p.thermal_hot, p.thermal_critical)
    ht = p.thermal_hysteresis_c
    thermal_cpu = (100.0, p.cpu_limit_warm, p.cpu_limit_hot, p.cpu_limit_critical_thermal)
    thermal: list[tuple[tuple[str, str], ...]] = [(("", ""), ("", ""))]
    for band in (1, 2, 3):
        name = THERMAL_NAMES[band]
        then = f" → {MODE_NAMES[band]}, CPU ≤ {thermal_cpu[band]:g}%"
        thermal.append(
            (
                (f"thermal_{name}", f" °C ≥ {name} {thermal_at[band]:g} °C{then}"),
                (
                    f"thermal_{name}",
                    f" °C held in the {name} band until < {thermal_at[band] - ht:g} °C{then}",
                ),
            )
        )

    platform: dict[tuple[str, int], Reason] = {}
    levels = (p.platform_warm_level, p.platform_hot_level, p.platform_critical_level)
    for os_name, top in (("android", 6), ("ios", 3)):
        for status in range(top + 1):
            level = PlatformThermal(os_name, status).level  # type: ignore[arg-type]
            band = sum(level >= at for at in levels)
            if band:
                name = THERMAL_NAMES[band]
                platform[(os_name, status)] = Reason(
                    f"thermal_{name}",
                    f"platform thermal {os_name} status {status} ({level.name.lower()}) → "
                    f"{name}, {MODE_NAMES[band]}, CPU ≤ {thermal_cpu[band]:g}% "
                    "(the stricter of the platform's status and °C wins)",
                )

    memory_at = (0.0, p.memory_low_gb * 1024, p.memory_critical_gb * 1024)
    task_cap = (0, p.max_tasks_memory_low, p.max_tasks_memory_critical)
    memory: list[tuple[tuple[str, str], ...]] = [(("", ""), ("", ""))]
    for band, name in ((1, "low"), (2, "critical")):
        cap = _tasks(task_cap[band])
        memory.append(
            (
                (f"memory_{name}", f" MB < {name} {memory_at[band]:g} MB: {cap}"),
                (
                    f"memory_{name}",
                    f" MB held in the {name} band until ≥ "
                    f"{memory_at[band] + p.memory_hysteresis_mb:g} MB: {cap}",
                ),
            )
        )

    return ReasonTexts(
        battery=tuple(battery),
        thermal=tuple(thermal),
        platform=platform,
        memory=tuple(memory),
        modes=(
            None,
            Reason("mode_balanced", f"balanced mode: {_tasks(p.max_tasks_balanced)}"),
            Reason(
                "mode_power_save",
                f"power_save mode: {_tasks(p.max_tasks_power_save)}, "
                f"memory ≤ {p.memory_limit_power_save_mb} MB per task",
            ),
            Reason(
                "mode_critical",
                f"critical mode: {_tasks(p.max_tasks_critical)}, "
                f"memory ≤ {p.memory_limit_critical_mb} MB per task",
            ),
        ),
        low_power=Reason(
            "low_power_mode",
            f"OS low power mode is on → power_save, CPU ≤ {p.cpu_limit_low_power_mode:g}%",
        ),
        mobile_chunk=Reason(
            "chunk_mobile_cap", f"smartphone/tablet: chunks ≤ {p.chunk_max_mobile_bytes} B"
        ),
    )
