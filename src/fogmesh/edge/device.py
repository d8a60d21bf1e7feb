"""A device as the EdgeManager sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from fogmesh.devices import (
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    EmulatedSensors,
    RealSensors,
)
from fogmesh.edge.cache import ModelCache
from fogmesh.mobile.policy import ResourceOptimization

__all__ = ["EdgeDevice"]


@dataclass(slots=True, kw_only=True)
class EdgeDevice:
    """A device as the EdgeManager sees it (``status`` is ``online`` or ``offline``)."""

    device_id: str
    device_name: str
    device_type: DeviceType
    capabilities: DeviceCapabilities
    profile: DeviceProfile
    optimization: ResourceOptimization
    classification: str  # why it is this device type
    registered_at: float
    last_seen: float
    status: str = "online"
    cache: ModelCache = field(repr=False)
    # The profile its deployments were last optimised for (changes are measured against it).
    baseline: DeviceProfile = field(repr=False)
    source: RealSensors | EmulatedSensors | None = field(default=None, repr=False)
