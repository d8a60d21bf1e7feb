"""The sensor-source seam: real detection and emulated profiles behind one interface.

CONTRACT SKELETON written by the lead; the devices helper owns this file and fills it in.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fogmesh.devices.model import DeviceCapabilities, DeviceProfile

__all__ = ["SensorSource", "sensor_source_from_env"]


@runtime_checkable
class SensorSource(Protocol):
    def capabilities(self) -> DeviceCapabilities:
        """Static capabilities (may be cached)."""
        ...

    def read(self) -> DeviceProfile:
        """A fresh live profile (classification included)."""
        ...


def sensor_source_from_env(profile: str | None = None) -> SensorSource:
    """``profile`` (a preset name or JSON/TOML file), else ``FOGMESH_PROFILE``, else real
    detection of this machine."""
    raise NotImplementedError
