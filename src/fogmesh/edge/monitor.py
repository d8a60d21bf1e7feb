"""What counts as a significant change in a device's state (pure).

The monitoring loop re-evaluates a device's policy and re-optimises its deployments only when a
reading moved by at least a threshold since the state the deployments were last optimised for —
small drifts (a battery losing a point a minute) must not churn transfers.
"""

from __future__ import annotations

from dataclasses import dataclass

from fogmesh.devices.model import DeviceProfile

__all__ = ["ChangeThresholds", "significant_changes"]


@dataclass(frozen=True, slots=True)
class ChangeThresholds:
    battery_points: float = 10.0
    temperature_c: float = 10.0
    ram_available_mb: int = 512


def _delta(
    name: str, before: float | None, after: float | None, threshold: float, unit: str
) -> str | None:
    if before is None and after is None:
        return None
    if before is None or after is None:
        return f"{name} {'appeared' if before is None else 'disappeared'}"
    if abs(after - before) >= threshold:
        return f"{name} {before:g}{unit} → {after:g}{unit} (±{threshold:g}{unit} or more)"
    return None


def significant_changes(
    before: DeviceProfile, after: DeviceProfile, thresholds: ChangeThresholds = ChangeThresholds()
) -> tuple[str, ...]:
    """Human-readable reasons, one per dimension that moved past its threshold; empty: none."""
    found = (
        _delta(
            "battery", before.battery_percent, after.battery_percent, thresholds.battery_points, "%"
        ),
        _delta("temperature", before.cpu_temp_c, after.cpu_temp_c, thresholds.temperature_c, " °C"),
        _delta(
            "available RAM",
            before.ram_available_mb,
            after.ram_available_mb,
            thresholds.ram_available_mb,
            " MB",
        ),
    )
    changes = [f for f in found if f is not None]
    if before.charging != after.charging and after.charging is not None:
        changes.append("started charging" if after.charging else "stopped charging")
    return tuple(changes)
