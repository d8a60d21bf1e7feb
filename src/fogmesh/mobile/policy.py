"""Mobile resource policy: for one device at one moment, how hard may it work?

CONTRACT SKELETON written by the lead; the mobile helper owns this file and fills it in.
Names below are relied on by the scheduler (fogmesh.fog.scheduler): keep them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fogmesh.devices.model import DeviceProfile

__all__ = [
    "ChunkingConfig",
    "PowerMode",
    "Reason",
    "ResourceOptimization",
    "ResourcePolicy",
    "TransportPreference",
    "evaluate",
]


class PowerMode(StrEnum):
    PERFORMANCE = "performance"
    BALANCED = "balanced"
    POWER_SAVE = "power_save"
    CRITICAL = "critical"


class TransportPreference(StrEnum):
    BITCHAT_ONLY = "bitchat_only"
    BITCHAT_PREFERRED = "bitchat_preferred"
    BALANCED = "balanced"
    BETANET_PREFERRED = "betanet_preferred"
    BETANET_ONLY = "betanet_only"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # machine-readable, e.g. "battery_critical"
    text: str  # human text, e.g. "battery 8% ≤ critical 10% and not charging"


@dataclass(slots=True)
class ChunkingConfig:
    def effective_chunk_size(self) -> int:
        raise NotImplementedError


class ResourcePolicy:
    pass


@dataclass(slots=True)
class ResourceOptimization:
    power_mode: PowerMode
    cpu_limit_percent: float  # 0–100 of the device's CPU capacity
    memory_limit_mb: int | None  # None: no limit beyond the device's own
    max_concurrent_tasks: int  # 0 admits no work
    chunking_config: ChunkingConfig
    transport_preference: TransportPreference
    reasons: tuple[Reason, ...]


def evaluate(
    profile: DeviceProfile,
    policy: ResourcePolicy,
    previous: ResourceOptimization | None = None,
) -> ResourceOptimization:
    raise NotImplementedError
