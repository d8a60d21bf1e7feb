"""Device capabilities and live state: detection, classification, emulation."""

from fogmesh.devices.model import (
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
    PlatformThermal,
    ThermalLevel,
)

__all__ = [
    "DeviceCapabilities",
    "DeviceProfile",
    "DeviceType",
    "NetworkType",
    "PlatformThermal",
    "ThermalLevel",
]
