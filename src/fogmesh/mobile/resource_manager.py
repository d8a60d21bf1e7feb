"""``MobileResourceManager``: the stateful adapter around the pure ``evaluate``.

It reads the device's sensor source (real detection, or an emulated profile chosen with
``FOGMESH_PROFILE``), keeps the last verdict per device so hysteresis works across calls, keeps a
bounded history and counts what it did.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Any, SupportsInt

from fogmesh.devices.model import DeviceProfile
from fogmesh.devices.sensors import SensorSource, sensor_source_from_env
from fogmesh.errors import ConfigError, InvalidRequest
from fogmesh.mobile.modes import PowerMode
from fogmesh.mobile.policy import ResourceOptimization, evaluate
from fogmesh.mobile.thresholds import DEFAULT_POLICY, ResourcePolicy
from fogmesh.mobile.transport import RoutingDecision, Transport

__all__ = ["MobileResourceManager"]

# Verdicts kept for hysteresis, one per device id; a coordinator-side manager sees many devices,
# so the map is bounded (least recently evaluated device forgotten first).
_MAX_TRACKED_DEVICES = 4096


class MobileResourceManager:
    """Decide, for a device now, its power mode, limits, chunk size and transport."""

    def __init__(
        self,
        policy: ResourcePolicy | None = None,
        sensors: SensorSource | None = None,
        *,
        history_size: int = 100,
    ) -> None:
        if policy is not None and not isinstance(policy, ResourcePolicy):
            raise ConfigError(
                f"must be a ResourcePolicy, not {type(policy).__name__}", field="policy"
            )
        if isinstance(history_size, bool) or not isinstance(history_size, int) or history_size < 1:
            raise ConfigError(f"must be an integer ≥ 1, not {history_size!r}", field="history_size")
        self._policy = policy if policy is not None else DEFAULT_POLICY
        self._sensors = sensors
        self._history: deque[ResourceOptimization] = deque(maxlen=history_size)
        self._last: OrderedDict[str, ResourceOptimization] = OrderedDict()
        self._evaluations = 0
        self._sensor_reads = 0
        self._sensor_errors = 0
        self._mode_changes = 0
        self._transport_changes = 0
        self._mode_counts = dict.fromkeys(PowerMode, 0)
        self._routing_counts = dict.fromkeys(Transport, 0)

    @property
    def policy(self) -> ResourcePolicy:
        return self._policy

    @property
    def history(self) -> tuple[ResourceOptimization, ...]:
        """Recent verdicts, oldest first (at most ``history_size``)."""
        return tuple(self._history)

    @property
    def last_optimization(self) -> ResourceOptimization | None:
        return self._history[-1] if self._history else None

    async def optimize_for_device(
        self, profile: DeviceProfile | None = None
    ) -> ResourceOptimization:
        """Evaluate ``profile``, or a fresh reading of the sensor source when it is ``None``."""
        if profile is None:
            profile = await self._read(None)
        previous = self._last.get(profile.device_id)
        optimization = evaluate(profile, self._policy, previous)
        self._record(optimization, previous)
        return optimization

    async def create_device_profile_from_env(self, profile: str | None = None) -> DeviceProfile:
        """A live profile from ``profile`` (preset name or JSON/TOML file) when given, else from
        this manager's sensor source (by default ``FOGMESH_PROFILE`` or real detection)."""
        return await self._read(profile)

    def get_transport_routing_decision(
        self,
        message_size_bytes: int,
        priority: SupportsInt = 3,
        *,
        device_id: str | None = None,
    ) -> RoutingDecision:
        """Route one message by the latest verdict (for ``device_id``, else the latest of all)."""
        if device_id is not None:
            optimization = self._last.get(device_id)
            if optimization is None:
                raise InvalidRequest(
                    f"no optimisation for device {device_id!r} yet: await optimize_for_device()"
                )
        elif self._history:
            optimization = self._history[-1]
        else:
            raise InvalidRequest("no optimisation yet: await optimize_for_device() first")
        decision = optimization.get_transport_routing_decision(message_size_bytes, priority)
        self._routing_counts[decision.primary] += 1
        return decision

    def get_status(self) -> dict[str, Any]:
        """Counters, policy and the latest verdict, JSON-able."""
        last = self.last_optimization
        return {
            "policy": self._policy.to_dict(),
            "sensor_source": type(self._sensors).__name__ if self._sensors else None,
            "evaluations": self._evaluations,
            "sensor_reads": self._sensor_reads,
            "sensor_errors": self._sensor_errors,
            "mode_changes": self._mode_changes,
            "transport_changes": self._transport_changes,
            "mode_counts": {mode.value: n for mode, n in self._mode_counts.items()},
            "routing_decisions": sum(self._routing_counts.values()),
            "routing_counts": {link.value: n for link, n in self._routing_counts.items()},
            "history_size": len(self._history),
            "history_limit": self._history.maxlen,
            "tracked_devices": len(self._last),
            "last": last.to_dict() if last is not None else None,
        }

    async def _read(self, name: str | None) -> DeviceProfile:
        # Detection touches psutil and /sys; keep it off the event loop.
        try:
            if name is not None:
                profile = await asyncio.to_thread(lambda: sensor_source_from_env(name).read())
            else:
                if self._sensors is None:
                    self._sensors = await asyncio.to_thread(sensor_source_from_env)
                profile = await asyncio.to_thread(self._sensors.read)
        except Exception:
            self._sensor_errors += 1
            raise
        self._sensor_reads += 1
        return profile

    def _record(
        self, optimization: ResourceOptimization, previous: ResourceOptimization | None
    ) -> None:
        self._evaluations += 1
        self._mode_counts[optimization.power_mode] += 1
        if previous is not None:
            if previous.power_mode is not optimization.power_mode:
                self._mode_changes += 1
            if previous.transport_preference is not optimization.transport_preference:
                self._transport_changes += 1
        self._history.append(optimization)
        self._last[optimization.device_id] = optimization
        self._last.move_to_end(optimization.device_id)
        if len(self._last) > _MAX_TRACKED_DEVICES:
            self._last.popitem(last=False)
