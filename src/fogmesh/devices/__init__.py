"""Device capabilities and live state: detection, classification, emulation.

The emulation names (presets, profile files, ``EmulatedSensors``) load on first use (PEP 562), so
a device agent that reads its real sensors never loads the presets. The rest are imported here as
before (``detect`` and ``classify`` must stay the functions, not their modules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fogmesh._lazy import lazy_exports
from fogmesh.devices.classify import Classification, classify, parse_device_type
from fogmesh.devices.detect import Host, PsutilHost, RealSensors, detect, detect_capabilities
from fogmesh.devices.model import (
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
    PlatformThermal,
    ThermalLevel,
)
from fogmesh.devices.sensors import SensorSource, sensor_source_from_env

if TYPE_CHECKING:
    from fogmesh.devices.emulated import (
        EmulatedSensors,
        dump_profile,
        load_profile,
        preset,
        preset_names,
        profile_from_mapping,
        resolve_profile,
    )

__all__ = [
    "Classification",
    "DeviceCapabilities",
    "DeviceProfile",
    "DeviceType",
    "EmulatedSensors",
    "Host",
    "NetworkType",
    "PlatformThermal",
    "PsutilHost",
    "RealSensors",
    "SensorSource",
    "ThermalLevel",
    "classify",
    "detect",
    "detect_capabilities",
    "dump_profile",
    "load_profile",
    "parse_device_type",
    "preset",
    "preset_names",
    "profile_from_mapping",
    "resolve_profile",
    "sensor_source_from_env",
]

_EMULATED = frozenset(
    {
        "EmulatedSensors",
        "dump_profile",
        "load_profile",
        "preset",
        "preset_names",
        "profile_from_mapping",
        "resolve_profile",
    }
)


__getattr__, __dir__ = lazy_exports(
    globals(), dict.fromkeys(_EMULATED, "fogmesh.devices.emulated"), __all__
)
