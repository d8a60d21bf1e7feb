"""fogmesh: everyday devices as one battery- and thermal-aware fog for AI work."""

from fogmesh._version import __version__
from fogmesh.clock import Clock, ManualClock, WallClock
from fogmesh.devices import (
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
)
from fogmesh.errors import ConfigError, FogmeshError
from fogmesh.mobile import (
    ChunkingConfig,
    MobileResourceManager,
    PowerMode,
    ResourceOptimization,
    ResourcePolicy,
    TransportPreference,
)

__all__ = [
    "ChunkingConfig",
    "Clock",
    "ConfigError",
    "DeviceCapabilities",
    "DeviceProfile",
    "DeviceType",
    "FogmeshError",
    "ManualClock",
    "MobileResourceManager",
    "NetworkType",
    "PowerMode",
    "ResourceOptimization",
    "ResourcePolicy",
    "TransportPreference",
    "WallClock",
    "__version__",
]
