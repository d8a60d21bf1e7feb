"""Indexes that let a placement sample likely-feasible devices instead of scanning all of them.

Capacity buckets: every device with a free slot (or room in its queue of short tasks) sits in
exactly one bucket keyed by

    (power band, capacity class, only queue places left)

power band 0 = mains, 1 = charging battery, 2–4 = unplugged battery below 20 %, 20–60 %, at
least 60 % (the default floor and long-task charge), 5 = device in critical power mode (admits
only CRITICAL work). The capacity class is min(CPU class, memory class) of the free capacity,
with matching edges (0.5 core ~ 512 MB, 1 ~ 1024, 2 ~ 2048, 4 ~ 4096, 8 ~ 8192). A device
with enough free CPU *and* memory for a task has both classes ≥ the task's, hence
class ≥ min(task CPU class, task memory class): reading only buckets at or above that never
skips a feasible device. Devices without a free slot or without any free CPU or memory are in
no bucket. The classes are coarse on purpose: a draw from few buckets is cheap, and a device
that turns out too small is just a rejected sample.

Constraint groups (site, device type, deployed model, GPU) hold every device with that property,
busy or not; a constrained task samples the smallest group that applies.

All structures are lists plus a position map, so add and remove are O(1) (swap with the last).
``place()`` never edits them: a device that fills up during a plan stays in its list and is
skipped when drawn (its new bucket is tracked by the run). Reservations only shrink free
capacity, so a device never needs to appear in a bucket it was not in.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Final, TypeVar

from fogmesh.devices.model import DeviceType
from fogmesh.mobile.policy import PowerMode

if TYPE_CHECKING:
    from fogmesh.fog.scheduler.snapshot import NodeView

__all__ = [
    "BAND_CHARGING",
    "BAND_CRITICAL_MODE",
    "BAND_MAINS",
    "BucketKey",
    "Group",
    "NodeIndex",
    "battery_bands_from",
    "bucket_key",
    "capacity_class",
]

BucketKey = tuple[int, int, bool]  # (power band, capacity class, only queue places left)
_K = TypeVar("_K")

BAND_MAINS: Final = 0
BAND_CHARGING: Final = 1
_BAND_BATTERY0: Final = 2
_BATTERY_EDGES: Final = (20.0, 60.0)  # unplugged bands: [0, 20), [20, 60), [60, 100]
BAND_CRITICAL_MODE: Final = 2 + len(_BATTERY_EDGES) + 1

_CPU_EDGES: Final = (0.5, 1.0, 2.0, 4.0, 8.0)
_MEM_EDGES: Final = (512, 1024, 2048, 4096, 8192)


def capacity_class(cores: float, mb: float) -> int:
    c = bisect_right(_CPU_EDGES, cores)
    m = bisect_right(_MEM_EDGES, mb)
    return c if c < m else m


def battery_bands_from(threshold: float) -> tuple[int, ...]:
    """Unplugged-battery bands that may hold a device with a charge ≥ ``threshold`` %."""
    uppers = (*_BATTERY_EDGES, 100.0)
    return tuple(
        _BAND_BATTERY0 + i
        for i, upper in enumerate(uppers)
        if upper > threshold or (upper == 100.0 and threshold <= 100.0)
    )


def power_band(node: NodeView) -> int:
    if node.power_mode is PowerMode.CRITICAL:
        return BAND_CRITICAL_MODE
    power = int(node.power)
    if power == 2:
        return BAND_MAINS
    if power == 1:
        return BAND_CHARGING
    pct = node.battery_percent
    return _BAND_BATTERY0 if pct is None else _BAND_BATTERY0 + bisect_right(_BATTERY_EDGES, pct)


def bucket_key(
    node: NodeView, cpu_used: float, mem_used: float, n_running: int
) -> BucketKey | None:
    free_cpu = node.cpu_fit - cpu_used
    free_mem = node.mem_cap - mem_used
    # A device whose slots are full may still queue short tasks (``queue_cap``): it stays in a
    # bucket, and the concurrency filter decides per task.
    if n_running >= node.slot_cap + node.queue_cap or free_cpu <= 0 or free_mem <= 0:
        return None
    return (power_band(node), capacity_class(free_cpu, free_mem), n_running >= node.slot_cap)


class Group:
    """An unordered set of nodes with O(1) add/remove and O(1) random access."""

    __slots__ = ("items", "pos")

    def __init__(self) -> None:
        self.items: list[NodeView] = []
        self.pos: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, node: NodeView) -> None:
        pos = self.pos.get(node.device_id)
        if pos is not None:
            self.items[pos] = node
            return
        self.pos[node.device_id] = len(self.items)
        self.items.append(node)

    def remove(self, device_id: str) -> None:
        pos = self.pos.pop(device_id, None)
        if pos is None:
            return
        last = self.items.pop()
        if pos < len(self.items):
            self.items[pos] = last
            self.pos[last.device_id] = pos

    def readd(self, node: NodeView) -> None:
        """``remove`` then ``add`` of a member, in one step and to the same order: the last
        item fills its place and the new version goes last."""
        items = self.items
        pos = self.pos
        did = node.device_id
        i = pos[did]
        j = len(items) - 1
        if i != j:
            last = items[j]
            items[i] = last
            pos[last.device_id] = i
            pos[did] = j
        items[j] = node


def has_free_slot(node: NodeView) -> bool:
    """In a bucket and not just for queue places: a task of any length could start here."""
    return (
        node.n_running < node.slot_cap
        and node.cpu_fit > node.cpu_used
        and (node.mem_cap > node.mem_used)
    )


class NodeIndex:
    __slots__ = (
        "buckets",
        "by_model",
        "by_site",
        "by_type",
        "gpu",
        "key_of",
        "nodes",
        "slot_room",
    )

    def __init__(self) -> None:
        self.nodes: dict[str, NodeView] = {}
        self.key_of: dict[str, BucketKey | None] = {}
        self.buckets: dict[BucketKey, Group] = {}
        self.by_site: dict[str, Group] = {}
        self.by_type: dict[DeviceType, Group] = {}
        self.by_model: dict[str, Group] = {}
        self.gpu = Group()
        self.slot_room = 0  # devices with a free slot (has_free_slot)

    def add(self, node: NodeView) -> None:
        did = node.device_id
        self.nodes[did] = node
        key = bucket_key(node, node.cpu_used, node.mem_used, node.n_running)
        self.key_of[did] = key
        if key is not None:
            _group(self.buckets, key).add(node)
        if has_free_slot(node):
            self.slot_room += 1
        if node.site is not None:
            _group(self.by_site, node.site).add(node)
        _group(self.by_type, node.device_type).add(node)
        for model in node.deployed_models:
            _group(self.by_model, model).add(node)
        if node.has_gpu:
            self.gpu.add(node)

    def replace(self, old: NodeView, node: NodeView) -> None:
        """``remove(old)`` then ``add(node)`` for the same device, leaving every structure in
        the same state and order, with a fraction of the work: a heartbeat or a lease change
        rarely moves a device between groups."""
        did = node.device_id
        nodes = self.nodes
        if has_free_slot(nodes.pop(did)):
            self.slot_room -= 1
        nodes[did] = node
        key = bucket_key(node, node.cpu_used, node.mem_used, node.n_running)
        _regroup(self.buckets, self.key_of[did], key, node)
        self.key_of[did] = key
        if has_free_slot(node):
            self.slot_room += 1
        _regroup(self.by_site, old.site, node.site, node)
        _regroup(self.by_type, old.device_type, node.device_type, node)
        if old.deployed_models or node.deployed_models:
            if old.deployed_models is node.deployed_models:
                for model in node.deployed_models:
                    _regroup(self.by_model, model, model, node)
            else:
                for model in old.deployed_models:
                    _discard(self.by_model, model, did)
                for model in node.deployed_models:
                    _group(self.by_model, model).add(node)
        if old.has_gpu and node.has_gpu:
            self.gpu.readd(node)
        elif old.has_gpu:
            self.gpu.remove(did)
        elif node.has_gpu:
            self.gpu.add(node)

    def remove(self, node: NodeView) -> None:
        did = node.device_id
        if has_free_slot(self.nodes.pop(did)):
            self.slot_room -= 1
        key = self.key_of.pop(did)
        if key is not None:
            _discard(self.buckets, key, did)
        if node.site is not None:
            _discard(self.by_site, node.site, did)
        _discard(self.by_type, node.device_type, did)
        for model in node.deployed_models:
            _discard(self.by_model, model, did)
        if node.has_gpu:
            self.gpu.remove(did)


def _regroup(groups: dict[_K, Group], old: _K | None, new: _K | None, node: NodeView) -> None:
    """Move ``node`` from group ``old`` to group ``new`` exactly as ``_discard`` then
    ``_group(...).add`` would, including where an emptied and re-created group lands in the
    dict order (sampling reads the groups in that order)."""
    if old is not None and old == new:
        g = groups[old]
        if len(g.items) == 1:
            del groups[old]
            groups[old] = g
            g.items[0] = node
        else:
            g.readd(node)
        return
    did = node.device_id
    if old is not None:
        _discard(groups, old, did)
    if new is not None:
        _group(groups, new).add(node)


def _group(groups: dict[_K, Group], key: _K) -> Group:
    g = groups.get(key)
    if g is None:
        g = groups[key] = Group()
    return g


def _discard(groups: dict[_K, Group], key: _K, device_id: str) -> None:
    g = groups.get(key)
    if g is not None:
        g.remove(device_id)
        if not g.items:
            del groups[key]
