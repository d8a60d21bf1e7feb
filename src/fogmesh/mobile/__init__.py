"""Mobile Resource Manager: power mode, limits, chunking and transport for one device."""

from fogmesh.mobile.chunking import ChunkingConfig
from fogmesh.mobile.modes import BatteryBand, MemoryBand, PowerMode, Reason, ThermalBand
from fogmesh.mobile.policy import ResourceOptimization, evaluate
from fogmesh.mobile.resource_manager import MobileResourceManager
from fogmesh.mobile.thresholds import ResourcePolicy
from fogmesh.mobile.transport import RoutingDecision, Transport, TransportPreference

__all__ = [
    "BatteryBand",
    "ChunkingConfig",
    "MemoryBand",
    "MobileResourceManager",
    "PowerMode",
    "Reason",
    "ResourceOptimization",
    "ResourcePolicy",
    "RoutingDecision",
    "ThermalBand",
    "Transport",
    "TransportPreference",
    "evaluate",
]
