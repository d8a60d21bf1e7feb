"""What the scheduler sees: one ``NodeView`` per device and the ``ClusterSnapshot`` holding them.

A ``NodeView`` is immutable and carries the device's own ``ResourceOptimization`` (computed by the
caller once per heartbeat, not per placement) plus the work already leased to it. Everything a
filter or scorer needs is precomputed at construction, so the hot path reads plain attributes.

The snapshot keeps indexes (see ``index.py``) so a placement samples feasible devices instead of
scanning them all. ``place()`` never changes a snapshot; the caller applies a plan with
``apply()`` (or rebuilds nodes from the store) when it commits the plan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final, final

from fogmesh.devices.model import (
    Accepts,
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
    ThermalLevel,
)
from fogmesh.errors import InvalidRequest
from fogmesh.fog.scheduler.index import NodeIndex
from fogmesh.fog.tasks import TaskPriority
from fogmesh.mobile.policy import PowerMode, ResourceOptimization, ResourcePolicy, evaluate

if TYPE_CHECKING:
    from fogmesh.fog.scheduler.explain import Plan

__all__ = [
    "ClusterSnapshot",
    "NodeView",
    "PowerSource",
    "RunningTask",
    "estimate_speed",
    "node_from_profile",
]


class PowerSource(IntEnum):
    """Ordered by preference: mains beats a charging battery beats an unplugged one."""

    BATTERY = 0
    CHARGING = 1
    MAINS = 2


@dataclass(frozen=True, slots=True)
class RunningTask:
    """A task holding a lease on a device (scheduled or running): what it reserves."""

    task_id: str
    priority: TaskPriority
    cpu_cores: float
    memory_mb: int
    started_at: float = 0.0
    # Estimated run time at reference speed (0: unknown). Lets the battery-drain filter count
    # the energy already committed on a device, not just the new task's.
    duration_s: float = 0.0


# Rough single-core speed relative to a 2 GHz laptop core when the clock is unknown.
_TYPE_SPEED: Final = {
    DeviceType.DESKTOP: 1.5,
    DeviceType.LAPTOP: 1.2,
    DeviceType.TABLET: 0.8,
    DeviceType.SMARTPHONE: 0.7,
    DeviceType.RASPBERRY_PI: 0.5,
}
_REFERENCE_MHZ: Final = 2000.0
# How far CPU reservations may go past the policy's CPU cap. Whole-core tasks under a
# fractional cap (60 % of 8 cores = 4.8) would otherwise leave the fraction idle for good; half
# a core rounds the cap to the nearest whole core: 4.8 holds five 1-core tasks, 2.4 still two.
# The cap itself still holds: the runner limits a device's fog work as a whole to it (the
# simulator's runner shares it, five tasks at 96 % speed each; no task below cap ÷ (cap + 0.5)).
CPU_OVERCOMMIT_CORES: Final = 0.5

# Battery capacity (Wh) and the extra draw of one fully busy core over idle (W), by class, when
# the device does not say: the published figures sim.power's presets use (PureEdgeSim's phone
# 0.078–3.3 W and laptop 1.7–23.6 W; 18.75 / 30 / 56 Wh) spread over 8 cores. Mains-only classes
# have no entry. tests/fog/test_battery_drain.py checks they agree with sim.power.
_TYPE_ENERGY: Final = {
    DeviceType.SMARTPHONE: (18.75, (3.3 - 0.078) / 8),
    DeviceType.TABLET: (30.0, (8.0 - 0.3) / 8),
    DeviceType.LAPTOP: (56.0, (23.6 - 1.7) / 8),
}


def estimate_speed(capabilities: DeviceCapabilities, device_type: DeviceType) -> float:
    """Relative per-core speed (1.0 = a 2 GHz core); by device class when the clock is unknown."""
    mhz = capabilities.cpu_freq_mhz
    if mhz is not None and mhz > 0 and math.isfinite(mhz):
        return mhz / _REFERENCE_MHZ
    return _TYPE_SPEED[device_type]


_NO_MODELS: Final[frozenset[str]] = frozenset()


class _NodeSlots:
    """NodeView's storage. A node is filled in as a ``_NodeDraft`` (plain attribute stores) and
    then becomes a ``NodeView``: the two share this layout, so the class can be switched. Why:
    nodes are rebuilt on every heartbeat and lease change, and 28 ``object.__setattr__`` calls
    per node cost more than everything else a rebuild does."""

    __slots__ = (
        "accepts",
        "battery_percent",
        "battery_wh",
        "cpu_cap",
        "cpu_cores",
        "cpu_fit",
        "cpu_temp_c",
        "cpu_used",
        "deployed_models",
        "device_id",
        "device_type",
        "fog_w_per_core",
        "fog_wh_committed",
        "has_gpu",
        "mem_cap",
        "mem_used",
        "memory_mb",
        "metered",
        "n_running",
        "network",
        "network_type",
        "optimization",
        "power",
        "power_mode",
        "queue_cap",
        "running",
        "seen_at",
        "site",
        "slot_cap",
        "speed",
        "thermal_level",
    )

    device_id: str
    device_type: DeviceType
    cpu_cores: float
    memory_mb: int
    has_gpu: bool
    power: PowerSource
    battery_percent: float | None
    cpu_temp_c: float | None
    thermal_level: ThermalLevel | None
    network_type: NetworkType | None
    metered: bool | None
    site: str | None
    network: str | None
    speed: float
    deployed_models: frozenset[str]
    optimization: ResourceOptimization | None
    running: tuple[RunningTask, ...]
    battery_wh: float | None
    fog_w_per_core: float | None
    accepts: Accepts | None  # the payloads its agent runs; None: not said (takes anything)
    seen_at: float  # coordinator time of the reading this node was built from
    # derived
    fog_wh_committed: float
    power_mode: PowerMode
    cpu_cap: float
    cpu_fit: float  # reservations may reach this: cpu_cap + CPU_OVERCOMMIT_CORES (0: none)
    mem_cap: int
    slot_cap: int
    queue_cap: int  # leases for short tasks beyond slot_cap, waiting in the agent's own queue
    cpu_used: float
    mem_used: int
    n_running: int


class _NodeDraft(_NodeSlots):
    __slots__ = ()


@final  # built as a _NodeDraft (see _NodeSlots): a subclass's layout could not switch
class NodeView(_NodeSlots):
    """One device as the scheduler sees it. Build once per heartbeat; never mutate."""

    __slots__ = ()

    def __init__(
        self,
        device_id: str,
        *,
        device_type: DeviceType = DeviceType.DESKTOP,
        cpu_cores: float = 1.0,
        memory_mb: int = 1024,
        has_gpu: bool = False,
        power: PowerSource = PowerSource.MAINS,
        battery_percent: float | None = None,
        cpu_temp_c: float | None = None,
        thermal_level: ThermalLevel | None = None,
        network_type: NetworkType | None = None,
        metered: bool | None = None,
        site: str | None = None,
        network: str | None = None,
        speed: float = 1.0,
        deployed_models: Iterable[str] = (),
        optimization: ResourceOptimization | None = None,
        running: Iterable[RunningTask] = (),
        battery_wh: float | None = None,
        fog_w_per_core: float | None = None,
        queued_per_slot: int = 4,
        accepts: Accepts | None = None,
        seen_at: float = 0.0,
    ) -> None:
        if not device_id:
            raise InvalidRequest("device_id must not be empty")
        if not (cpu_cores > 0 and math.isfinite(cpu_cores)):
            raise InvalidRequest(f"{device_id}: cpu_cores must be > 0", field="cpu_cores")
        if memory_mb <= 0:
            raise InvalidRequest(f"{device_id}: memory_mb must be > 0", field="memory_mb")
        if not (speed >= 0 and math.isfinite(speed)):
            raise InvalidRequest(f"{device_id}: speed must be ≥ 0", field="speed")
        if battery_percent is not None and not 0 <= battery_percent <= 100:
            raise InvalidRequest(f"{device_id}: battery_percent must be 0–100", field="battery")
        cores = float(cpu_cores)
        ram = int(memory_mb)
        running_t = tuple(running)
        models = frozenset(deployed_models)
        if optimization is None:
            mode = PowerMode.PERFORMANCE
            cpu_cap, mem_cap, slot_cap = cores, ram, max(1, int(cores))
        else:
            mode = optimization.power_mode
            share = min(max(optimization.cpu_limit_percent, 0.0), 100.0) / 100.0
            cpu_cap = cores * share
            limit = optimization.memory_limit_mb
            # The policy's memory limit is read as the budget for all fog work on the device:
            # the stricter reading, so a plan never sends what the runner would have to kill.
            mem_cap = ram if limit is None else min(ram, limit)
            slot_cap = max(0, optimization.max_concurrent_tasks)
        cls = type(self)
        object.__setattr__(self, "__class__", _NodeDraft)
        d: Any = self
        d.device_id = device_id
        # (Converted only when not already the enum: a call into the enum machinery costs as
        # much as the rest of a field.)
        d.device_type = device_type if type(device_type) is DeviceType else DeviceType(device_type)
        d.cpu_cores = cores
        d.memory_mb = ram
        d.has_gpu = bool(has_gpu)
        d.power = power if type(power) is PowerSource else PowerSource(power)
        d.battery_percent = None if battery_percent is None else float(battery_percent)
        d.cpu_temp_c = cpu_temp_c
        d.thermal_level = thermal_level
        d.network_type = network_type
        d.metered = metered
        d.site = site
        d.network = network
        d.speed = float(speed)
        d.deployed_models = models if models else _NO_MODELS
        d.optimization = optimization
        d.power_mode = mode
        d.cpu_cap = cpu_cap
        d.cpu_fit = cpu_cap + CPU_OVERCOMMIT_CORES if cpu_cap > 0 else 0.0
        d.mem_cap = mem_cap
        d.slot_cap = slot_cap
        d.queue_cap = slot_cap * max(0, int(queued_per_slot))
        d.battery_wh = battery_wh
        d.fog_w_per_core = fog_w_per_core
        d.accepts = accepts
        d.seen_at = seen_at
        _lease(d, running_t)
        d.__class__ = cls

    # The same object is shared by every index the node is in: it must stay a value.
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("NodeView is immutable; use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("NodeView is immutable; use replace()")

    @property
    def on_mains(self) -> bool:
        return self.power is not PowerSource.BATTERY

    @property
    def is_metered(self) -> bool:
        """Unknown metering counts as metered unless the link is wired or Wi-Fi."""
        if self.metered is not None:
            return self.metered
        return self.network_type not in (NetworkType.ETHERNET, NetworkType.WIFI)

    def replace(self, **changes: Any) -> NodeView:
        values = {name: getattr(self, name) for name in _INIT_FIELDS}
        values.update(changes)
        return NodeView(**values)

    def with_task(self, task: RunningTask) -> NodeView:
        return self._with_running((*self.running, task))

    def with_tasks(self, tasks: Iterable[RunningTask]) -> NodeView:
        return self._with_running((*self.running, *tasks))

    def without_tasks(self, task_ids: Iterable[str]) -> NodeView:
        drop = set(task_ids)
        return self._with_running(tuple(t for t in self.running if t.task_id not in drop))

    def _with_running(self, running: tuple[RunningTask, ...]) -> NodeView:
        """This node with other leases: what depends on the leases is recomputed (as in
        ``__init__``), the rest is shared. Lease changes are the hot path of a live snapshot."""
        d: Any = _new(_NodeDraft)
        d.device_id = self.device_id
        d.device_type = self.device_type
        d.cpu_cores = self.cpu_cores
        d.memory_mb = self.memory_mb
        d.has_gpu = self.has_gpu
        d.power = self.power
        d.battery_percent = self.battery_percent
        d.cpu_temp_c = self.cpu_temp_c
        d.thermal_level = self.thermal_level
        d.network_type = self.network_type
        d.metered = self.metered
        d.site = self.site
        d.network = self.network
        d.speed = self.speed
        d.deployed_models = self.deployed_models
        d.optimization = self.optimization
        d.power_mode = self.power_mode
        d.cpu_cap = self.cpu_cap
        d.cpu_fit = self.cpu_fit
        d.mem_cap = self.mem_cap
        d.slot_cap = self.slot_cap
        d.queue_cap = self.queue_cap
        d.battery_wh = self.battery_wh
        d.fog_w_per_core = self.fog_w_per_core
        d.accepts = self.accepts
        d.seen_at = self.seen_at
        _lease(d, running)
        d.__class__ = NodeView
        node: NodeView = d
        return node

    def __repr__(self) -> str:
        return (
            f"NodeView({self.device_id!r}, {self.device_type.value}, {self.power.name.lower()}, "
            f"cpu {self.cpu_used:g}/{self.cpu_cap:g}, mem {self.mem_used}/{self.mem_cap}, "
            f"tasks {self.n_running}/{self.slot_cap})"
        )


_new = object.__new__


def _lease(d: Any, running: tuple[RunningTask, ...]) -> None:
    """Set a draft node's leases and what follows from them (``speed`` and
    ``fog_w_per_core`` already set)."""
    d.running = running
    n = d.n_running = len(running)
    k = d.slot_cap
    if 0 < k < n:
        # The leases past the slots wait in the agent's queue and start only as slots free:
        # at most slot_cap of them use CPU and memory at once, and the largest are the bound.
        # (sorted, not heapq.nlargest: with dozens of tiny queued leases the C sort is faster)
        d.cpu_used = math.fsum(sorted([t.cpu_cores for t in running])[-k:])
        d.mem_used = sum(sorted([t.memory_mb for t in running])[-k:])
    else:
        d.cpu_used = math.fsum(t.cpu_cores for t in running) if running else 0.0
        d.mem_used = sum(t.memory_mb for t in running)
    # Energy the work already leased here will draw: core-seconds at reference speed ×
    # watts per core ÷ this device's speed. Counted whole (not what is left of it): the
    # scheduler does not know how far a task has got, and erring high keeps the floor safe.
    committed = 0.0
    w = d.fog_w_per_core
    speed = d.speed
    if w and speed > 0 and running:
        ref_core_s = math.fsum(t.cpu_cores * t.duration_s for t in running)
        committed = ref_core_s * w / speed / 3600.0
    d.fog_wh_committed = committed


_INIT_FIELDS: Final = (
    "device_id",
    "device_type",
    "cpu_cores",
    "memory_mb",
    "has_gpu",
    "power",
    "battery_percent",
    "cpu_temp_c",
    "thermal_level",
    "network_type",
    "metered",
    "site",
    "network",
    "speed",
    "deployed_models",
    "optimization",
    "running",
    "battery_wh",
    "fog_w_per_core",
    "accepts",
    "seen_at",
)


def node_from_profile(
    profile: DeviceProfile,
    optimization: ResourceOptimization | None = None,
    *,
    policy: ResourcePolicy | None = None,
    running: Iterable[RunningTask] = (),
    deployed_models: Iterable[str] = (),
    site: str | None = None,
    network: str | None = None,
    speed: float | None = None,
    battery_wh: float | None = None,
    fog_w_per_core: float | None = None,
    queued_per_slot: int = 4,
    seen_at: float = 0.0,
) -> NodeView:
    """Build a node from a device profile; computes the optimization with ``policy`` if not given.

    ``battery_wh`` and ``fog_w_per_core`` (the battery-drain filter's inputs) default to the
    device class's published figures for a battery device.

    Call it once per heartbeat and keep the node: ``evaluate`` is not on the placement path.
    """
    if optimization is None:
        optimization = evaluate(profile, policy if policy is not None else ResourcePolicy())
    caps = profile.capabilities
    if caps.has_battery is False or (caps.has_battery is None and profile.battery_percent is None):
        # No battery seen at all: a desktop or a Pi on a wall adapter.
        power = PowerSource.MAINS
    elif profile.charging:
        power = PowerSource.CHARGING
    else:
        power = PowerSource.BATTERY
    thermal = profile.platform_thermal.level if profile.platform_thermal is not None else None
    if power is not PowerSource.MAINS and (battery_wh is None or fog_w_per_core is None):
        default_wh, default_w = _TYPE_ENERGY.get(profile.device_type, (None, None))
        battery_wh = default_wh if battery_wh is None else battery_wh
        fog_w_per_core = default_w if fog_w_per_core is None else fog_w_per_core
    return NodeView(
        profile.device_id,
        device_type=profile.device_type,
        cpu_cores=float(caps.cpu_cores_logical or 1),
        memory_mb=caps.ram_total_mb or 512,
        has_gpu=bool(caps.has_gpu),
        power=power,
        battery_percent=profile.battery_percent,
        cpu_temp_c=profile.cpu_temp_c,
        thermal_level=thermal,
        network_type=profile.network_type,
        metered=profile.metered,
        site=site,
        network=network,
        speed=speed if speed is not None else estimate_speed(caps, profile.device_type),
        deployed_models=deployed_models,
        optimization=optimization,
        running=running,
        battery_wh=battery_wh,
        fog_w_per_core=fog_w_per_core,
        queued_per_slot=queued_per_slot,
        accepts=profile.accepts,
        seen_at=seen_at,
    )


class ClusterSnapshot:
    """The fleet at one moment, indexed for sampling.

    ``place()`` reads it and never changes it. ``upsert``/``remove``/``apply``/``release`` update
    it in O(1) per node (plus the node's deployed models), so a coordinator keeps one snapshot
    alive and feeds it heartbeats instead of rebuilding 100,000 nodes per decision.
    """

    __slots__ = ("index",)

    def __init__(self, nodes: Iterable[NodeView] = ()) -> None:
        self.index = NodeIndex()
        for node in nodes:
            if node.device_id in self.index.nodes:
                raise InvalidRequest(f"device {node.device_id} appears twice in the snapshot")
            self.index.add(node)

    def __len__(self) -> int:
        return len(self.index.nodes)

    def __iter__(self) -> Iterator[NodeView]:
        return iter(self.index.nodes.values())

    def __contains__(self, device_id: object) -> bool:
        return device_id in self.index.nodes

    def get(self, device_id: str) -> NodeView | None:
        return self.index.nodes.get(device_id)

    def upsert(self, node: NodeView) -> None:
        old = self.index.nodes.get(node.device_id)
        if old is not None:
            self.index.replace(old, node)
        else:
            self.index.add(node)

    def remove(self, device_id: str) -> NodeView | None:
        old = self.index.nodes.get(device_id)
        if old is not None:
            self.index.remove(old)
        return old

    def release(self, device_id: str, task_ids: Iterable[str]) -> None:
        """Drop finished (or requeued) tasks' reservations from a device."""
        node = self.index.nodes.get(device_id)
        if node is not None:
            self.upsert(node.without_tasks(task_ids))

    def apply(self, plan: Plan, now: float) -> None:
        """Commit a plan's reservations: drop preempted leases, add the placed ones."""
        by_device: dict[str, list[str]] = {}
        for p in plan.preempted:
            by_device.setdefault(p.device_id, []).append(p.task_id)
        for device_id, ids in by_device.items():
            self.release(device_id, ids)
        # One node rebuild per device, however many tasks the plan put there.
        added: dict[str, list[RunningTask]] = {}
        for placement in plan.placements:
            added.setdefault(placement.device_id, []).append(
                RunningTask(
                    placement.task_id,
                    placement.priority,
                    placement.cpu_cores,
                    placement.memory_mb,
                    now,
                    placement.duration_s,
                )
            )
        for device_id, leases in added.items():
            node = self.index.nodes.get(device_id)
            if node is not None:
                self.upsert(node.with_tasks(leases))
