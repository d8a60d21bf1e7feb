"""Mobile Resource Manager: power mode, limits, chunking and transport for one device."""

from fogmesh.mobile.policy import (
    ChunkingConfig,
    PowerMode,
    Reason,
    ResourceOptimization,
    ResourcePolicy,
    TransportPreference,
    evaluate,
)
from fogmesh.mobile.resource_manager import MobileResourceManager

__all__ = [
    "ChunkingConfig",
    "MobileResourceManager",
    "PowerMode",
    "Reason",
    "ResourceOptimization",
    "ResourcePolicy",
    "TransportPreference",
    "evaluate",
]
