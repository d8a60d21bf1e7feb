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
from fogmesh.fog import (
    CoordinatorConfig,
    FogCoordinator,
    TaskPriority,
    TaskState,
    TaskType,
)
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
    "CoordinatorConfig",
    "DeviceCapabilities",
    "DeviceProfile",
    "DeviceType",
    "FogCoordinator",
    "FogmeshError",
    "ManualClock",
    "MobileResourceManager",
    "NetworkType",
    "PowerMode",
    "ResourceOptimization",
    "ResourcePolicy",
    "TaskPriority",
    "TaskState",
    "TaskType",
    "TransportPreference",
    "WallClock",
    "__version__",
]
