"""fogmesh: everyday devices as one battery- and thermal-aware fog for AI work.

The public names below load on first use (PEP 562), so ``import fogmesh`` stays cheap for a
device agent or a worker process that needs only a small part of the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fogmesh._lazy import lazy_exports
from fogmesh._version import __version__

if TYPE_CHECKING:
    from fogmesh.clock import Clock, ManualClock, WallClock
    from fogmesh.devices import DeviceCapabilities, DeviceProfile, DeviceType, NetworkType
    from fogmesh.edge import EdgeManager
    from fogmesh.errors import ConfigError, FogmeshError
    from fogmesh.fog import CoordinatorConfig, FogCoordinator, TaskPriority, TaskState, TaskType
    from fogmesh.mobile import (
        ChunkingConfig,
        MobileResourceManager,
        PowerMode,
        ResourceOptimization,
        ResourcePolicy,
        TransportPreference,
    )
    from fogmesh.twin import DataSource, DigitalTwinConcierge, UserPreferences

__all__ = [
    "ChunkingConfig",
    "Clock",
    "ConfigError",
    "CoordinatorConfig",
    "DataSource",
    "DeviceCapabilities",
    "DeviceProfile",
    "DeviceType",
    "DigitalTwinConcierge",
    "EdgeManager",
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
    "UserPreferences",
    "WallClock",
    "__version__",
]

_HOME = {
    "ChunkingConfig": "fogmesh.mobile",
    "Clock": "fogmesh.clock",
    "ConfigError": "fogmesh.errors",
    "CoordinatorConfig": "fogmesh.fog",
    "DataSource": "fogmesh.twin",
    "DeviceCapabilities": "fogmesh.devices",
    "DeviceProfile": "fogmesh.devices",
    "DeviceType": "fogmesh.devices",
    "DigitalTwinConcierge": "fogmesh.twin",
    "EdgeManager": "fogmesh.edge",
    "FogCoordinator": "fogmesh.fog",
    "FogmeshError": "fogmesh.errors",
    "ManualClock": "fogmesh.clock",
    "MobileResourceManager": "fogmesh.mobile",
    "NetworkType": "fogmesh.devices",
    "PowerMode": "fogmesh.mobile",
    "ResourceOptimization": "fogmesh.mobile",
    "ResourcePolicy": "fogmesh.mobile",
    "TaskPriority": "fogmesh.fog",
    "TaskState": "fogmesh.fog",
    "TaskType": "fogmesh.fog",
    "TransportPreference": "fogmesh.mobile",
    "UserPreferences": "fogmesh.twin",
    "WallClock": "fogmesh.clock",
}


__getattr__, __dir__ = lazy_exports(globals(), _HOME, __all__)
