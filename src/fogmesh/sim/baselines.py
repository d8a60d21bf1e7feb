"""Placement policies the simulator compares: fogmesh's own and the baselines other systems use.

Every policy sees the same fleet and tasks through one small interface (``SimPolicy``):

* ``device_changed(dev, now)`` — the device's view (battery %, °C, plug, reachability) moved;
* ``task_started`` / ``task_ended`` — reservations;
* ``decide(pending, now, round_no)`` — which pending task goes where, plus preemptions;
* ``evictions(dev, now)`` — running work the device can no longer host (node pressure);
* ``backlog_capacity(fleet, waiting)`` — under saturation, the busy cores and the cores the
  waiting work could legally use (the denominator of the saturated utilisation).

Each policy also sets ``dev.allowed_cores`` on every view change: the cores its own rules let
fog work use right now, the denominator of "utilisation of eligible capacity".

``FogmeshPolicy`` is the real thing: ``mobile.policy.evaluate`` per device view and
``fog.scheduler.place`` on a live ``ClusterSnapshot`` — the same functions the coordinator calls,
never a copy. The baselines know only what a battery-agnostic cluster scheduler knows: which
devices are reachable and their free cores and memory.

* ``random`` — a random device with room;
* ``round_robin`` — the next device with room after the last one used;
* ``least_loaded`` — kube-scheduler's LeastAllocated over a sample of ≥ 100 feasible devices
  (kube's ``minFeasibleNodesToFind``), most free share wins;
* ``binpack`` — Nomad's default best-fit on the same sample: least free share after placing wins;
* ``power_of_two`` — Sparrow: two random devices with room, the less loaded wins;
* ``fogmesh_drain`` — fogmesh with the long-task 60 % rule left to the battery-drain projection;
* ``boinc`` — BOINC's default rule: computes only on mains or on a charging battery ≥ 90 %,
  least loaded among those (battery-aware, so it is not a "battery-agnostic" baseline).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from fogmesh.devices.model import DeviceProfile
from fogmesh.fog.scheduler import (
    DEFAULT_CONFIG,
    PASS,
    CapacityMode,
    ClusterSnapshot,
    Filter,
    NodeView,
    Pipeline,
    PowerSource,
    Reservations,
    RunningTask,
    SchedulerConfig,
    TaskNeed,
    battery_evictions,
    node_from_profile,
    place,
)
from fogmesh.fog.tasks import TaskPriority
from fogmesh.mobile.policy import PowerMode, ResourceOptimization, ResourcePolicy, evaluate
from fogmesh.sim.fleet import SimDevice
from fogmesh.sim.workloads import SimTask

__all__ = [
    "BATTERY_AGNOSTIC",
    "POLICY_NAMES",
    "Decision",
    "FogmeshPolicy",
    "SampledPolicy",
    "SimPolicy",
    "make_policy",
]


@dataclass(slots=True)
class Decision:
    placements: list[tuple[SimTask, SimDevice]] = field(default_factory=list)
    preempted: list[str] = field(default_factory=list)  # task ids to stop and requeue


class SimPolicy(Protocol):
    name: str

    def device_changed(self, dev: SimDevice, now: float) -> None: ...

    def task_started(self, dev: SimDevice, task: SimTask, now: float) -> None: ...

    def task_ended(self, dev: SimDevice, task_id: str, now: float) -> None: ...

    def decide(self, pending: Sequence[SimTask], now: float, round_no: int) -> Decision: ...

    def evictions(self, dev: SimDevice, now: float) -> Sequence[str]: ...

    def backlog_capacity(
        self, fleet: Sequence[SimDevice], waiting: Iterable[SimTask]
    ) -> tuple[float, float]: ...


# Rejections that only say the device is full right now — of cores, memory or task slots — so
# its remaining room is capacity the scheduler failed to pack, not capacity the rules withhold.
_OCCUPANCY_CODES: Final = frozenset({"cpu_busy", "memory_busy", "slots_busy"})


def _lenient(waiting: Iterable[SimTask]) -> list[SimTask]:
    """One task per (cores, MB, critical): the shortest, which every rule treats most leniently
    (the long-task rule and the battery-drain projection only get stricter with length)."""
    best: dict[tuple[float, int, bool], SimTask] = {}
    for t in waiting:
        s = t.spec
        key = (s.cores, s.memory_mb, s.priority >= TaskPriority.CRITICAL)
        cur = best.get(key)
        if cur is None or s.duration_s < cur.spec.duration_s:
            best[key] = t
    return list(best.values())


def _backlog_capacity(
    fleet: Sequence[SimDevice], open_to: Callable[[SimDevice], bool]
) -> tuple[float, float]:
    """(busy, eligible) cores: every busy allowed core, plus the idle ones of devices
    ``open_to`` says some waiting task may legally use."""
    busy = eligible = 0.0
    for dev in fleet:
        allowed = dev.allowed_cores
        if not dev.available or allowed <= 0:
            continue
        used = min(dev.fog_active(), allowed)
        busy += used
        eligible += allowed if allowed - used > 1e-9 and open_to(dev) else used
    return busy, eligible


class FogmeshPolicy:
    """``evaluate`` per device view + ``place`` on a snapshot kept current in O(1) per change."""

    def __init__(
        self,
        name: str = "fogmesh",
        config: SchedulerConfig = DEFAULT_CONFIG,
        policy: ResourcePolicy | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.policy = policy if policy is not None else ResourcePolicy()
        self.snapshot = ClusterSnapshot()
        self._previous: dict[str, ResourceOptimization] = {}
        self._devices: dict[str, SimDevice] = {}
        # The filters ``place`` runs for this config, to judge a device on all its rules.
        self._filters: tuple[Filter, ...] = Pipeline(config).filters

    def device_changed(self, dev: SimDevice, now: float) -> None:
        self._devices[dev.device_id] = dev
        if not dev.available:
            self.snapshot.remove(dev.device_id)
            dev.allowed_cores = 0.0
            return
        profile = DeviceProfile(
            device_id=dev.device_id,
            device_type=dev.device_type,
            capabilities=dev.capabilities,
            timestamp=now,
            battery_percent=100.0 * dev.view_soc if dev.has_battery else None,
            charging=dev.plugged if dev.has_battery else None,
            cpu_temp_c=dev.view_temp,
            network_type=dev.network_type,
            metered=dev.metered,
        )
        opt = evaluate(profile, self.policy, self._previous.get(dev.device_id))
        self._previous[dev.device_id] = opt
        # The agent's runner enforces the CPU limit on running work too (cgroup / duty cycle).
        dev.cap_cores = dev.cores * opt.cpu_limit_percent / 100.0
        spec = dev.pspec
        node = node_from_profile(
            profile,
            opt,
            running=_running(self.snapshot, dev),
            speed=dev.speed,
            battery_wh=spec.battery_wh,
            fog_w_per_core=(spec.max_w - spec.idle_w) / dev.cores if spec.has_battery else None,
        )
        self.snapshot.upsert(node)
        dev.allowed_cores = self._allowed(node)

    def _allowed(self, node: NodeView) -> float:
        """The node's CPU cap if the device-level rules admit ordinary work now, else 0."""
        cfg = self.config
        if node.slot_cap == 0 or node.power_mode is PowerMode.CRITICAL:
            return 0.0
        if node.power is PowerSource.BATTERY and (
            node.battery_percent is None or node.battery_percent < cfg.battery_floor_percent
        ):
            return 0.0
        if node.cpu_temp_c is not None and node.cpu_temp_c >= cfg.thermal_ceiling_c:
            return 0.0
        return node.cpu_cap

    def evictions(self, dev: SimDevice, now: float) -> Sequence[str]:
        node = self.snapshot.get(dev.device_id)
        if node is None:
            return ()
        return [tid for tid, _ in battery_evictions(node, self.config)]

    def backlog_capacity(
        self, fleet: Sequence[SimDevice], waiting: Iterable[SimTask]
    ) -> tuple[float, float]:
        """Busy cores, and the allowed cores the waiting work could legally use now.

        A device's idle allowed cores count when at least one waiting task passes every
        placement rule there except "full right now" (``_OCCUPANCY_CODES``): an idle fraction
        of a core, a full slot table or full memory is packing the scheduler left undone and
        stays in the denominator; a battery below the long-task charge, a battery that cannot
        fund the task above floor + reserve, or a CPU or memory cap smaller than any waiting
        task withholds the device from that work by rule, and its idle cores are not counted.
        """
        cfg = self.config
        needs = [TaskNeed(t.task, cfg) for t in _lenient(waiting)]
        checks = [tuple(f.check for f in self._filters if f.applies(need)) for need in needs]
        res = Reservations()

        def open_to(dev: SimDevice) -> bool:
            node = self.snapshot.get(dev.device_id)
            if node is None:
                return False
            for need, filters in zip(needs, checks, strict=True):
                for check in filters:
                    v = check(node, need, res)
                    if v is not PASS and v.code not in _OCCUPANCY_CODES:
                        break
                else:
                    return True
            return False

        return _backlog_capacity(fleet, open_to)

    def task_started(self, dev: SimDevice, task: SimTask, now: float) -> None:
        node = self.snapshot.get(dev.device_id)
        if node is not None:
            r = task.spec
            self.snapshot.upsert(
                node.with_task(
                    RunningTask(r.id, r.priority, r.cores, r.memory_mb, now, r.duration_s)
                )
            )

    def task_ended(self, dev: SimDevice, task_id: str, now: float) -> None:
        self.snapshot.release(dev.device_id, (task_id,))

    def decide(self, pending: Sequence[SimTask], now: float, round_no: int) -> Decision:
        by_id = {t.id: t for t in pending}
        plan = place(
            self.snapshot, [t.task for t in pending], now, config=self.config, rng_seed=round_no
        )
        out = Decision(preempted=[p.task_id for p in plan.preempted])
        for p in plan.placements:
            out.placements.append((by_id[p.task_id], self._devices[p.device_id]))
        return out


def _running(snapshot: ClusterSnapshot, dev: SimDevice) -> tuple[RunningTask, ...]:
    node = snapshot.get(dev.device_id)
    if node is not None:
        return node.running
    return tuple(
        RunningTask(tid, TaskPriority.NORMAL, cores, mem, duration_s=duration)
        for tid, (cores, mem, duration) in dev.running.items()
    )


class _IndexedSet:
    """Devices in insertion order with O(1) add, remove and random choice."""

    __slots__ = ("items", "pos")

    def __init__(self) -> None:
        self.items: list[SimDevice] = []
        self.pos: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, dev: SimDevice) -> None:
        if dev.idx not in self.pos:
            self.pos[dev.idx] = len(self.items)
            self.items.append(dev)

    def discard(self, dev: SimDevice) -> None:
        i = self.pos.pop(dev.idx, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.pos[last.idx] = i


_SAMPLE: Final = 100  # kube-scheduler's minFeasibleNodesToFind
_RANDOM_PROBES: Final = 32

Chooser = Callable[["SampledPolicy", SimTask, dict[int, tuple[float, int]]], SimDevice | None]


class SampledPolicy:
    """A battery-agnostic baseline: reachable devices with room, chosen by ``chooser``."""

    def __init__(
        self,
        name: str,
        chooser: Chooser,
        rng: random.Random,
        eligible: Callable[[SimDevice], bool] | None = None,
    ) -> None:
        self.name = name
        self.rng = rng
        self._chooser = chooser
        self._eligible = eligible
        self.free = _IndexedSet()
        self.cursor = 0

    def _update(self, dev: SimDevice) -> None:
        usable = dev.available and (self._eligible is None or self._eligible(dev))
        dev.allowed_cores = float(dev.cores) if usable else 0.0
        ok = usable and dev.fog_cores < dev.cores and dev.fog_mem < dev.memory_mb
        if ok:
            self.free.add(dev)
        else:
            self.free.discard(dev)

    def device_changed(self, dev: SimDevice, now: float) -> None:
        self._update(dev)

    def task_started(self, dev: SimDevice, task: SimTask, now: float) -> None:
        self._update(dev)

    def task_ended(self, dev: SimDevice, task_id: str, now: float) -> None:
        self._update(dev)

    def evictions(self, dev: SimDevice, now: float) -> Sequence[str]:
        return ()  # battery-agnostic: work runs until the device goes away

    def backlog_capacity(
        self, fleet: Sequence[SimDevice], waiting: Iterable[SimTask]
    ) -> tuple[float, float]:
        """Busy cores, and the allowed cores a waiting task's shape fits (cores, RAM)."""
        shapes = [(t.spec.cores, t.spec.memory_mb) for t in _lenient(waiting)]
        return _backlog_capacity(
            fleet, lambda d: any(c <= d.cores and m <= d.memory_mb for c, m in shapes)
        )

    def decide(self, pending: Sequence[SimTask], now: float, round_no: int) -> Decision:
        out = Decision()
        extra: dict[int, tuple[float, int]] = {}  # reserved earlier in this round
        failed_shapes: list[tuple[float, int]] = []
        # Priority first, then arrival: the ordering kube and Nomad queues use too.
        for task in sorted(pending, key=lambda t: (-t.spec.priority, t.spec.arrival, t.id)):
            shape = (task.spec.cores, task.spec.memory_mb)
            if any(shape[0] >= c and shape[1] >= m for c, m in failed_shapes):
                continue
            dev = self._chooser(self, task, extra)
            if dev is None:
                failed_shapes.append(shape)
                continue
            c, m = extra.get(dev.idx, (0.0, 0))
            extra[dev.idx] = (c + task.spec.cores, m + task.spec.memory_mb)
            out.placements.append((task, dev))
        return out

    # helpers for choosers
    def fits(self, dev: SimDevice, task: SimTask, extra: dict[int, tuple[float, int]]) -> bool:
        c, m = extra.get(dev.idx, (0.0, 0))
        return (
            dev.cores - dev.fog_cores - c >= task.spec.cores - 1e-9
            and dev.memory_mb - dev.fog_mem - m >= task.spec.memory_mb
        )

    def free_share(
        self, dev: SimDevice, task: SimTask, extra: dict[int, tuple[float, int]]
    ) -> float:
        """Mean free share of CPU and memory after placing ``task``."""
        c, m = extra.get(dev.idx, (0.0, 0))
        cpu = (dev.cores - dev.fog_cores - c - task.spec.cores) / dev.cores
        mem = (dev.memory_mb - dev.fog_mem - m - task.spec.memory_mb) / dev.memory_mb
        return (cpu + mem) / 2.0

    def scan(
        self, task: SimTask, extra: dict[int, tuple[float, int]], key: Callable[[SimDevice], float]
    ) -> SimDevice | None:
        best: SimDevice | None = None
        best_key = 0.0
        for dev in self.free.items:
            if self.fits(dev, task, extra):
                k = key(dev)
                if best is None or k > best_key or (k == best_key and dev.idx < best.idx):
                    best, best_key = dev, k
        return best


def _random(
    p: SampledPolicy, task: SimTask, extra: dict[int, tuple[float, int]]
) -> SimDevice | None:
    items = p.free.items
    if not items:
        return None
    for _ in range(_RANDOM_PROBES):
        dev = items[p.rng.randrange(len(items))]
        if p.fits(dev, task, extra):
            return dev
    return p.scan(task, extra, lambda d: p.rng.random())


def _round_robin(
    p: SampledPolicy, task: SimTask, extra: dict[int, tuple[float, int]]
) -> SimDevice | None:
    items = p.free.items
    n = len(items)
    for step in range(n):
        dev = items[(p.cursor + step) % n]
        if p.fits(dev, task, extra):
            p.cursor = (p.cursor + step + 1) % n
            return dev
    return None


def _sampled_best(sign: float) -> Chooser:
    def choose(
        p: SampledPolicy, task: SimTask, extra: dict[int, tuple[float, int]]
    ) -> SimDevice | None:
        items = p.free.items
        if not items:
            return None
        sample = items if len(items) <= _SAMPLE else p.rng.sample(items, _SAMPLE)
        best: SimDevice | None = None
        best_key = 0.0
        for dev in sample:
            if p.fits(dev, task, extra):
                k = sign * p.free_share(dev, task, extra)
                if best is None or k > best_key or (k == best_key and dev.idx < best.idx):
                    best, best_key = dev, k
        if best is not None or len(sample) == len(items):
            return best
        return p.scan(task, extra, lambda d: sign * p.free_share(d, task, extra))

    return choose


def _power_of_two(
    p: SampledPolicy, task: SimTask, extra: dict[int, tuple[float, int]]
) -> SimDevice | None:
    items = p.free.items
    if not items:
        return None
    found: list[SimDevice] = []
    for _ in range(_RANDOM_PROBES):
        dev = items[p.rng.randrange(len(items))]
        if p.fits(dev, task, extra) and dev not in found:
            found.append(dev)
            if len(found) == 2:
                break
    if not found:
        return p.scan(task, extra, lambda d: p.free_share(d, task, extra))
    return max(found, key=lambda d: (p.free_share(d, task, extra), -d.idx))


def _boinc_eligible(dev: SimDevice) -> bool:
    return not dev.has_battery or (dev.plugged and dev.view_soc >= 0.9)


POLICY_NAMES: Final = (
    "fogmesh",
    "fogmesh_spread",
    "fogmesh_drain",
    "random",
    "round_robin",
    "least_loaded",
    "binpack",
    "power_of_two",
    "boinc",
)
BATTERY_AGNOSTIC: Final = frozenset(
    {"random", "round_robin", "least_loaded", "binpack", "power_of_two"}
)


def make_policy(name: str, seed: int) -> SimPolicy:
    """A fresh policy by name; its random choices come from ``seed`` only."""
    rng = random.Random(f"{seed}:{name}")
    if name == "fogmesh":
        return FogmeshPolicy()
    if name == "fogmesh_spread":
        return FogmeshPolicy(name, SchedulerConfig(capacity_mode=CapacityMode.SPREAD))
    if name == "fogmesh_drain":
        # The battery-drain projection alone guards unplugged batteries: no blanket 60 % charge
        # for long tasks (a long task passes whenever its energy leaves floor + reserve).
        floor = DEFAULT_CONFIG.battery_floor_percent
        return FogmeshPolicy(name, SchedulerConfig(long_task_min_battery_percent=floor))
    choosers: dict[str, Chooser] = {
        "random": _random,
        "round_robin": _round_robin,
        "least_loaded": _sampled_best(1.0),
        "binpack": _sampled_best(-1.0),
        "power_of_two": _power_of_two,
        "boinc": _sampled_best(1.0),
    }
    if name not in choosers:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")
    eligible = _boinc_eligible if name == "boinc" else None
    return SampledPolicy(name, choosers[name], rng, eligible)
