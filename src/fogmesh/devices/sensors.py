"""The sensor-source seam: real detection and emulated profiles behind one interface.

Everything that needs "this device, now" — the CLI, the Mobile Resource Manager, the agent, the
demo, tests — asks a ``SensorSource``, so an emulated phone and this machine take the same path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fogmesh.clock import Clock
from fogmesh.config import setting
from fogmesh.devices.detect import RealSensors
from fogmesh.devices.model import DeviceCapabilities, DeviceProfile

if TYPE_CHECKING:
    from fogmesh.devices.emulated import EmulatedSensors

__all__ = ["EmulatedSensors", "RealSensors", "SensorSource", "sensor_source_from_env"]


@runtime_checkable
class SensorSource(Protocol):
    def capabilities(self) -> DeviceCapabilities:
        """Static capabilities (may be cached)."""
        ...

    def read(self) -> DeviceProfile:
        """A fresh live profile (classification included)."""
        ...


def sensor_source_from_env(
    profile: str | None = None, *, clock: Clock | None = None
) -> RealSensors | EmulatedSensors:
    """``profile`` (a preset name or JSON/TOML file), else ``FOGMESH_PROFILE``, else real
    detection of this machine.

    A bad name or file raises ``ConfigError`` naming ``profile`` or ``FOGMESH_PROFILE``.
    """
    field = "profile"
    if not profile:
        profile = setting("profile") or None
        field = "FOGMESH_PROFILE"
    if not profile:
        return RealSensors(clock=clock)
    # Emulation (presets, profile files) loads only when asked for: a real device's agent
    # runs without it.
    from fogmesh.devices.emulated import EmulatedSensors, resolve_profile

    emulated, label = resolve_profile(profile, field=field)
    return EmulatedSensors(emulated, clock=clock, label=label)


def __getattr__(name: str) -> Any:
    if name == "EmulatedSensors":  # still importable from here, as before
        from fogmesh.devices.emulated import EmulatedSensors

        return EmulatedSensors
    raise AttributeError(f"module 'fogmesh.devices.sensors' has no attribute {name!r}")
