"""Device capabilities and live state: detection, classification, emulation."""

from fogmesh.devices.classify import Classification, classify, parse_device_type
from fogmesh.devices.detect import Host, PsutilHost, RealSensors, detect, detect_capabilities
from fogmesh.devices.emulated import (
    EmulatedSensors,
    dump_profile,
    load_profile,
    preset,
    preset_names,
    profile_from_mapping,
    resolve_profile,
)
from fogmesh.devices.model import (
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
    PlatformThermal,
    ThermalLevel,
)
from fogmesh.devices.sensors import SensorSource, sensor_source_from_env

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
