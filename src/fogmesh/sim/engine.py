"""The discrete-event run: SimPy drives habits, placement rounds, completions and refreshes.

Event granularity (why 10,000 devices are affordable): nothing ticks per device. A device is
advanced (closed-form battery and thermal models) only when an event touches it, and its *view*
— the battery % and °C the policies see, as a heartbeat would report them — is refreshed when
the models say it has moved by ``refresh_battery_pct`` / ``refresh_temp_c`` (or crossed 90 %,
20 %, 10 %, empty): ``time_to_soc`` / ``time_to_temp`` give that moment exactly, and one SimPy
timeout is scheduled for it.

Arrivals are not events: a task joins the queue at the first round (or sample) after it
arrived, which is the first moment anything reads the queue.

Placement (kube-scheduler's queues): a round every ``round_s`` decides the tasks that arrived
or were requeued since the last one (the active queue). A task that fits nowhere moves to the
unschedulable pool and is retried only at a round after an event that may have made room —
work ended, a device came back, was plugged in, or its policy now allows more (cooler, more
charge) — or at least every ``_FLUSH_ROUNDS`` rounds; not re-decided every round for nothing.

Randomness: the fleet, the habits, the workload and each policy draw from their own
``random.Random`` seeded from ``(seed, stream name)``, so every policy sees the identical fleet
and tasks, and a seed reproduces a run exactly.
"""

from __future__ import annotations

import gc
import random
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any, Final

import msgspec
import simpy

from fogmesh.fog.scheduler import DEFAULT_CONFIG
from fogmesh.fog.tasks import TaskState
from fogmesh.mobile.policy import ResourcePolicy
from fogmesh.sim.baselines import SimPolicy, make_policy
from fogmesh.sim.capacity import capacity_ref_cores
from fogmesh.sim.clustering import ClusterDriver, ClusterStats
from fogmesh.sim.fleet import DeviceEvent, SimDevice, build_fleet, device_events
from fogmesh.sim.power import DevicePowerSpec, power_w, time_to_soc
from fogmesh.sim.scenario import Scenario
from fogmesh.sim.thermal import ThermalSpec, time_to_temp
from fogmesh.sim.workloads import SimTask, TaskSpec, generate_tasks

__all__ = ["RunData", "Simulation"]

SAMPLE_S: Final = 900.0
_CFG = DEFAULT_CONFIG
_POL = ResourcePolicy()
# Levels a view is refreshed at exactly, besides every ``refresh_*`` step: the ones a rule reads.
# Battery: BOINC's 90 %, the long-task charge, the policy's bands and where their hysteresis
# lets go, the eviction level (floor + margin: work stops there, before the floor), the floor,
# empty. Temperature: the thermal score's comfort level, the policy's bands and their leave
# levels, the scheduler's ceiling (JEITA and throttle levels are added per class).
_SOC_MARKS: Final = tuple(
    sorted(
        {
            0.9,
            _CFG.long_task_min_battery_percent / 100.0,
            _POL.battery_conservative / 100.0,
            (_POL.battery_conservative + _POL.battery_hysteresis_pct) / 100.0,
            _POL.battery_low / 100.0,
            (_POL.battery_low + _POL.battery_hysteresis_pct) / 100.0,
            _POL.battery_critical / 100.0,
            (_POL.battery_critical + _POL.battery_hysteresis_pct) / 100.0,
            (_CFG.battery_floor_percent + _CFG.battery_evict_margin_percent) / 100.0,
            _CFG.battery_floor_percent / 100.0,
            0.0,
        }
    )
)
_COMFORT_C: Final = _CFG.thermal_comfort_c
_TEMP_MARKS: Final = frozenset(
    {
        _COMFORT_C,
        _POL.thermal_warm,
        _POL.thermal_warm - _POL.thermal_hysteresis_c,
        _POL.thermal_hot,
        _POL.thermal_hot - _POL.thermal_hysteresis_c,
        _POL.thermal_critical,
        _POL.thermal_critical - _POL.thermal_hysteresis_c,
        _CFG.thermal_ceiling_c,
    }
)
_MIN_REFRESH_S: Final = 1.0
_EPS: Final = 1e-9
_FLUSH_ROUNDS: Final = 10  # the unschedulable pool is retried at least this often (5 min)


@dataclass(slots=True)
class RunData:
    """Everything a run leaves behind, for ``metrics`` and ``report``."""

    policy: str
    scenario: Scenario
    fleet: list[SimDevice]
    tasks: list[SimTask]
    capacity_ref_cores: float
    policy_cpu_s: float = 0.0
    rounds: int = 0
    task_decisions: int = 0
    placements: int = 0
    preemptions: int = 0
    lost: int = 0
    series: dict[str, list[Any]] = field(default_factory=dict)
    temp_hist: dict[int, int] = field(default_factory=dict)
    evicted: int = 0
    clusters: ClusterStats = field(default_factory=ClusterStats)
    # Per 15-minute sample taken while work was waiting that fitted nowhere (saturation):
    # busy ÷ the allowed cores that waiting work could legally use (``backlog_capacity``) …
    backlogged_util: list[float] = field(default_factory=list)
    # … and busy ÷ every allowed core, whether or not any waiting task may use it.
    backlogged_allowed_util: list[float] = field(default_factory=list)
    # device → (time fog work drove it below 20 %, whether a plugged device had a free core then)
    driven20: dict[int, tuple[float, bool]] = field(default_factory=dict)
    driven10: dict[int, tuple[float, bool]] = field(default_factory=dict)
    wall_s: float = 0.0


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector for the run.

    A run allocates millions of short-lived containers while holding hundreds of thousands of
    long-lived ones (devices, tasks, nodes), so every full collection rescans all of them: a
    sixth of the CPU of a 24-hour run, to free a few hundred cyclic objects. Reference
    counting still frees everything else at once; the collector resumes afterwards. One
    collection first, so an earlier run's simulation (a reference cycle: SimPy holds bound
    methods of it) is not kept alive through this one.
    """
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@cache
def _temp_marks(pspec: DevicePowerSpec, tspec: ThermalSpec) -> tuple[float, ...]:
    """The shared temperature marks plus the class's JEITA and throttle levels, sorted (one
    tuple per device class, so finding the next mark is a bisection)."""
    extra = {pspec.jeita_warm_c, pspec.jeita_stop_c, tspec.throttle_start_c, tspec.throttle_full_c}
    return tuple(sorted(_TEMP_MARKS | extra))


def _next_level(marks: Sequence[float], value: float, step: float, rising: bool) -> float:
    """The next level worth a refresh from ``value`` moving up (``rising``) or down: ``step``
    away, or the nearest of the sorted ``marks`` (levels a rule reads) before that."""
    if rising:
        target = value + step
        i = bisect_right(marks, value + _EPS)
        return marks[i] if i < len(marks) and marks[i] < target else target
    target = value - step
    i = bisect_left(marks, value - _EPS) - 1
    return marks[i] if i >= 0 and marks[i] > target else target


class Simulation:
    """One policy over one scenario. ``run()`` once; the result is deterministic per seed."""

    def __init__(
        self,
        scenario: Scenario,
        policy: str,
        *,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.scenario = scenario
        seed = scenario.seed
        self.fleet = build_fleet(scenario, random.Random(f"{seed}:fleet"))
        self.events = device_events(self.fleet, scenario, random.Random(f"{seed}:habits"))
        cap = capacity_ref_cores(self.fleet)
        self.specs = generate_tasks(scenario, cap, random.Random(f"{seed}:work"))
        self.policy: SimPolicy = make_policy(policy, seed)
        self.env = simpy.Environment()
        self.pending: dict[str, SimTask] = {}
        self.active: dict[str, SimTask] = {}  # to decide at the next round
        self.unschedulable: dict[str, SimTask] = {}  # fitted nowhere; retried after an event
        self.running: dict[str, SimTask] = {}
        self.tasks: list[SimTask] = []
        self.freed = True
        self.room = 0  # plugged or mains devices with a free core right now
        self.data = RunData(policy, scenario, self.fleet, self.tasks, cap)
        self.clusters = ClusterDriver()
        self.data.clusters = self.clusters.stats
        self._progress = progress
        self._soc_step = scenario.refresh_battery_pct / 100.0
        self._next_arrival = 0  # specs before this index have arrived
        self._temp_marks = [_temp_marks(d.pspec, d.tspec) for d in self.fleet]

    # --- processes -------------------------------------------------------------------------

    def _admit(self, now: float) -> None:
        """Let every task that has arrived by ``now`` join the queue.

        Arrivals are not events of their own: nothing reads the queue between two rounds (or
        samples), so joining them all at the next read gives the same run with one SimPy event
        fewer per task.
        """
        specs = self.specs
        i = self._next_arrival
        n = len(specs)
        while i < n and specs[i].arrival <= now:
            self._arrive(specs[i])
            i += 1
        self._next_arrival = i

    def _habits(self) -> Any:
        env = self.env
        for ev in self.events:
            if ev.time > env.now:
                yield env.timeout(ev.time - env.now)
            self._habit(ev)

    def _rounds(self) -> Any:
        env = self.env
        n = 0
        while True:
            yield env.timeout(self.scenario.round_s)
            n += 1
            self._admit(env.now)
            retry = bool(self.unschedulable) and (self.freed or n % _FLUSH_ROUNDS == 0)
            if self.active or retry:
                self._round(n, retry=retry)

    def _sampler(self) -> Any:
        env = self.env
        while True:
            self.clusters.reform(self.fleet, env.now)
            self._admit(env.now)
            self._sample()
            if self._progress is not None:
                self._progress(env.now / self.scenario.duration_s)
            yield env.timeout(SAMPLE_S)

    # --- run ---------------------------------------------------------------------------------

    def run(self) -> RunData:
        started = time.perf_counter()
        with _collector_paused():
            self._run()
        if self._progress is not None:
            self._progress(1.0)
        self.data.wall_s = time.perf_counter() - started
        return self.data

    def _run(self) -> None:
        now = 0.0
        for dev in self.fleet:
            self._show(dev, now)
        env = self.env
        for proc in (self._habits, self._rounds, self._sampler):
            env.process(proc())
        end = self.scenario.duration_s
        env.run(until=end)
        self._admit(end)
        for dev in self.fleet:
            self._touch(dev, end)
        for task in self.tasks:
            if task.state is TaskState.RUNNING:
                dev = self.fleet[task.device]
                self._detach(task, dev, end)
                task.finish(TaskState.CANCELLED, end, "horizon")
            elif task.state is TaskState.PENDING:
                task.finish(TaskState.CANCELLED, end, "horizon")

    # --- events ------------------------------------------------------------------------------

    def _arrive(self, spec: TaskSpec) -> None:
        task = SimTask(spec)
        self.tasks.append(task)
        self.pending[spec.id] = task
        self.active[spec.id] = task

    def _habit(self, ev: DeviceEvent) -> None:
        now = self.env.now
        dev = self.fleet[ev.idx]
        self._touch(dev, now)
        kind = ev.kind
        if kind == "day":
            dev.bg_load = dev.hw.day_load
        elif kind == "night":
            dev.bg_load = dev.hw.idle_load
        elif kind == "plug":
            dev.plugged = True
            dev.dead = False
        elif kind == "unplug":
            dev.plugged = False
        elif kind == "offline":
            dev.online = False
        elif kind == "online":
            dev.online = True
        elif kind == "fail":
            dev.powered = False
        elif kind == "recover":
            dev.powered = True
        self._show(dev, now)

    def _touch(self, dev: SimDevice, now: float) -> None:
        """Advance the device's models and its tasks' progress to ``now``, before a change."""
        elapsed = now - dev.t_rate
        if elapsed > 0 and dev.running:
            rate = dev.task_rate()
            running = self.running
            for tid in dev.running:
                running[tid].remaining -= rate * elapsed
        dev.t_rate = now
        d20, d10 = dev.driven20, dev.driven10
        dev.advance(now)
        if dev.driven20 and not d20:
            self.data.driven20[dev.idx] = (now, self.room > 0)
        if dev.driven10 and not d10:
            self.data.driven10[dev.idx] = (now, self.room > 0)

    def _room(self, dev: SimDevice) -> None:
        """Keep ``self.room`` (plugged devices with a free core) exact after any change."""
        has = dev.available and dev.plugged and dev.cores - dev.fog_cores >= 1.0
        if has is not dev.has_room:
            dev.has_room = has
            self.room += 1 if has else -1

    def _retime(self, dev: SimDevice, now: float) -> None:
        """After a change, reschedule the completion of every running task whose rate moved.

        A task's completion event stays valid while its rate is unchanged (``_touch`` only
        subtracts the work done), so most changes — another task starting on an uncapped,
        cool device — schedule nothing: fewer events, and fewer stale ones left in the heap.
        """
        if not dev.running:
            return
        rate = dev.task_rate()
        running = self.running
        for tid in dev.running:
            task = running[tid]
            if task.sched_rate == rate:
                continue
            task.version += 1
            task.sched_rate = rate
            if rate > 0:
                ev = self.env.timeout(max(task.remaining, 0.0) / rate)
                ev.callbacks.append(partial(self._complete, task, task.version))

    def _show(self, dev: SimDevice, now: float, *, freed: bool = True) -> None:
        """Publish the device's current state as its view; retime its tasks and its next refresh.

        A habit event (``freed``) may have made room; a view refresh alone counts as one only
        if the policy now allows the device more cores than before (cooler, more charge).
        """
        if not dev.available and dev.running:
            self._lose_all(dev, now)
        self.clusters.seen(dev, now)
        dev.view_soc = dev.ledger.soc
        dev.view_temp = dev.temp_c
        allowed = dev.allowed_cores
        self.policy.device_changed(dev, now)
        evict = self.policy.evictions(dev, now)
        if evict:
            self._evict(dev, evict, now)
        if freed or dev.allowed_cores > allowed:
            self.freed = True
        self._room(dev)
        self._retime(dev, now)
        self._schedule_refresh(dev, now)

    def _evict(self, dev: SimDevice, task_ids: Sequence[str], now: float) -> None:
        """Node-pressure eviction: stop the named work and requeue it (attempt + 1 on restart)."""
        for tid in task_ids:
            task = self.running.get(tid)
            if task is None or task.device != dev.idx:
                continue
            self._detach(task, dev, now)
            self.data.evicted += 1
            self._requeue(task)

    def _schedule_refresh(self, dev: SimDevice, now: float) -> None:
        dev.refresh_version += 1
        if not dev.powered or (dev.dead and not dev.plugged):
            return
        pspec = dev.pspec
        # The load and draw exactly as ``SimDevice.load`` and ``power_w`` give them.
        load = min(1.0, dev.bg_load + min(dev.fog_cores, dev.cap_cores) / dev.cores)
        best: float | None = None
        if dev.has_battery:
            ledger = dev.ledger
            soc = ledger.soc
            step = self._soc_step
            target = _next_level(_SOC_MARKS, soc, step, dev.plugged)
            if 0.0 <= target < 1.0:
                best = time_to_soc(pspec, ledger, load, dev.plugged, dev.temp_c, target)
        watts = power_w(pspec, load)
        tspec = dev.tspec
        ss = dev.ambient_c + tspec.c_per_w * watts  # thermal.steady_state_c
        temp = dev.temp_c
        # Below the comfort level no decision reads the temperature (policy bands start at
        # 45 °C, the thermal score is flat below 40 °C, JEITA and throttling act higher), so a
        # device staying there needs no thermal refreshes: most of the fleet, most of the time.
        if (ss >= _COMFORT_C or temp >= _COMFORT_C) and abs(ss - temp) > 1e-6:
            marks = self._temp_marks[dev.idx]
            step_c = self.scenario.refresh_temp_c
            target_c = _next_level(marks, temp, step_c, ss > temp)
            t = time_to_temp(tspec, temp, watts, target_c, dev.ambient_c)
            if t is not None and (best is None or t < best):
                best = t
        if best is None:
            return
        ev = self.env.timeout(best if best > _MIN_REFRESH_S else _MIN_REFRESH_S)
        ev.callbacks.append(partial(self._refresh, dev, dev.refresh_version))

    def _refresh(self, dev: SimDevice, version: int, _ev: object) -> None:
        if version != dev.refresh_version:
            return
        now = self.env.now
        self._touch(dev, now)
        self._show(dev, now, freed=False)

    # --- tasks -------------------------------------------------------------------------------

    def _round(self, round_no: int, *, retry: bool) -> None:
        """Decide the active queue, plus the unschedulable pool when ``retry``."""
        now = self.env.now
        data = self.data
        batch = list(self.active.values())
        self.active.clear()
        if retry:
            batch.extend(self.unschedulable.values())
            self.unschedulable.clear()
            self.freed = False
        live: list[SimTask] = []
        for task in batch:
            deadline = task.spec.deadline
            if deadline is not None and deadline <= now:
                del self.pending[task.id]
                task.finish(TaskState.FAILED, now, "deadline")
            else:
                live.append(task)
        if not live:
            return
        t0 = time.process_time()
        decision = self.policy.decide(live, now, round_no)
        data.policy_cpu_s += time.process_time() - t0
        data.rounds += 1
        data.task_decisions += len(live)
        touched: dict[int, SimDevice] = {}
        for tid in decision.preempted:
            victim = self.running.get(tid)
            if victim is None:
                continue
            dev = self.fleet[victim.device]
            if dev.idx not in touched:
                self._touch(dev, now)
                touched[dev.idx] = dev
            self._detach(victim, dev, now)
            self._requeue(victim)
            data.preemptions += 1
        for task, dev in decision.placements:
            if dev.idx not in touched:
                self._touch(dev, now)
                touched[dev.idx] = dev
            self._start(task, dev, now)
        for task in live:
            if task.state is TaskState.PENDING and task.id not in self.active:
                self.unschedulable[task.id] = task
        for dev in touched.values():
            self._room(dev)
            self._retime(dev, now)
            self._schedule_refresh(dev, now)

    def _requeue(self, task: SimTask) -> None:
        task.state = TaskState.PENDING
        task.device = -1
        task.remaining = task.spec.duration_s
        task.task = msgspec.structs.replace(task.task, attempt=task.attempt)
        self.pending[task.id] = task
        self.active[task.id] = task

    def _start(self, task: SimTask, dev: SimDevice, now: float) -> None:
        del self.pending[task.id]
        spec = task.spec
        dev.running[spec.id] = (spec.cores, spec.memory_mb, spec.duration_s)
        self.running[spec.id] = task
        dev.fog_cores += spec.cores
        dev.fog_mem += spec.memory_mb
        task.state = TaskState.RUNNING
        task.attempt += 1
        task.device = dev.idx
        task.start = now
        task.remaining = spec.duration_s
        task.sched_rate = -1.0  # no completion event yet
        if task.first_start is None:
            task.first_start = now
        self.data.placements += 1
        self.policy.task_started(dev, task, now)

    def _complete(self, task: SimTask, version: int, _ev: object) -> None:
        if task.version != version or task.state is not TaskState.RUNNING:
            return
        now = self.env.now
        dev = self.fleet[task.device]
        self._touch(dev, now)
        self._detach(task, dev, now)
        task.finish(TaskState.COMPLETED, now, "done")
        self.freed = True
        self._room(dev)
        self._retime(dev, now)
        self._schedule_refresh(dev, now)

    def _detach(self, task: SimTask, dev: SimDevice, now: float) -> None:
        cores, mem, _ = dev.running.pop(task.id)
        del self.running[task.id]
        dev.fog_cores = max(0.0, dev.fog_cores - cores)
        dev.fog_mem -= mem
        if not dev.running:
            dev.fog_cores = 0.0  # no float residue on an idle device
        task.version += 1
        task.sched_rate = -1.0
        self.policy.task_ended(dev, task.id, now)

    def _lose_all(self, dev: SimDevice, now: float) -> None:
        """The device vanished (offline, failed, flat): its tasks are lost and retried."""
        for task in [self.running[tid] for tid in dev.running]:
            self._detach(task, dev, now)
            self.data.lost += 1
            if task.attempt >= task.task.max_attempts:
                task.finish(TaskState.FAILED, now, "lost")
            else:
                self._requeue(task)

    # --- sampling ----------------------------------------------------------------------------

    def _sample(self) -> None:
        now = self.env.now
        s = self.data.series
        s.setdefault("t_h", []).append(now / 3600.0)
        by_class: dict[str, list[float]] = {}
        fog_batt = 0.0
        busy = 0.0
        eligible = 0.0
        hist = self.data.temp_hist
        for dev in self.fleet:
            fog_batt += dev.fog_battery_wh
            if not dev.powered:
                continue
            if dev.has_battery:
                by_class.setdefault(dev.device_type.value, []).append(dev.view_soc)
            hist[int(dev.view_temp)] = hist.get(int(dev.view_temp), 0) + 1
            if dev.available and dev.allowed_cores > 0:
                eligible += dev.allowed_cores
                busy += min(dev.fog_active(), dev.allowed_cores)
        for cls, socs in sorted(by_class.items()):
            s.setdefault(f"soc_{cls}", []).append(100.0 * sum(socs) / len(socs))
        s.setdefault("fog_battery_wh", []).append(fog_batt)
        util = busy / eligible if eligible else 0.0
        s.setdefault("utilisation", []).append(util)
        if self.unschedulable:
            # Saturation, exactly: work was waiting that fitted nowhere at the last round.
            b, e = self.policy.backlog_capacity(self.fleet, self.unschedulable.values())
            self.data.backlogged_util.append(b / e if e else 0.0)
            self.data.backlogged_allowed_util.append(util)
        s.setdefault("pending", []).append(len(self.pending))
