"""The discrete-event run: SimPy drives habits, arrivals, placement rounds and completions.

Event granularity (why 10,000 devices are affordable): nothing ticks per device. A device is
advanced (closed-form battery and thermal models) only when an event touches it, and its *view*
— the battery % and °C the policies see, as a heartbeat would report them — is refreshed when
the models say it has moved by ``refresh_battery_pct`` / ``refresh_temp_c`` (or crossed 90 %,
20 %, 10 %, empty): ``time_to_soc`` / ``time_to_temp`` give that moment exactly, and one SimPy
timeout is scheduled for it. A placement round runs every ``round_s`` when something changed.

Randomness: the fleet, the habits, the workload and each policy draw from their own
``random.Random`` seeded from ``(seed, stream name)``, so every policy sees the identical fleet
and tasks, and a seed reproduces a run exactly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import msgspec
import simpy

from fogmesh.fog.tasks import TaskState
from fogmesh.sim.baselines import SimPolicy, make_policy
from fogmesh.sim.fleet import DeviceEvent, SimDevice, build_fleet, device_events
from fogmesh.sim.power import power_w, time_to_soc
from fogmesh.sim.scenario import Scenario
from fogmesh.sim.thermal import steady_state_c, time_to_temp
from fogmesh.sim.workloads import SimTask, TaskSpec, generate_tasks

__all__ = ["BATTERY_ELIGIBLE_SHARE", "RunData", "Simulation", "capacity_ref_cores"]

# Assumed share of time a battery device is eligible for work (charged enough, cool, reachable);
# only used to size the offered load. The utilisation metric measures the real eligible time.
BATTERY_ELIGIBLE_SHARE: Final = 0.5
SAMPLE_S: Final = 900.0
_SOC_MARKS: Final = (0.9, 0.2, 0.1, 0.0)
_MIN_REFRESH_S: Final = 1.0
_COMFORT_C: Final = 40.0


def capacity_ref_cores(fleet: list[SimDevice]) -> float:
    """Eligible capacity in reference cores (cores × speed), battery devices discounted."""
    return sum(
        d.cores * d.speed * (BATTERY_ELIGIBLE_SHARE if d.has_battery else 1.0) for d in fleet
    )


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
    room_at: list[tuple[float, bool]] = field(default_factory=list)
    below20_at: dict[int, float] = field(default_factory=dict)
    wall_s: float = 0.0


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
        self.running: dict[str, SimTask] = {}
        self.tasks: list[SimTask] = []
        self.arrived: list[SimTask] = []
        self.freed = True
        self.data = RunData(policy, scenario, self.fleet, self.tasks, cap)
        self._progress = progress

    # --- processes -------------------------------------------------------------------------

    def _arrivals(self) -> Any:
        env = self.env
        for spec in self.specs:
            if spec.arrival > env.now:
                yield env.timeout(spec.arrival - env.now)
            self._arrive(spec)

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
            if not self.pending:
                self.arrived.clear()
                continue
            full = self.freed or n % 6 == 0
            if full or self.arrived:
                self._round(n, full=full)

    def _sampler(self) -> Any:
        env = self.env
        while True:
            self._sample()
            if self._progress is not None:
                self._progress(env.now / self.scenario.duration_s)
            yield env.timeout(SAMPLE_S)

    # --- run ---------------------------------------------------------------------------------

    def run(self) -> RunData:
        started = time.perf_counter()
        now = 0.0
        for dev in self.fleet:
            self._show(dev, now)
        env = self.env
        for proc in (self._arrivals, self._habits, self._rounds, self._sampler):
            env.process(proc())
        end = self.scenario.duration_s
        env.run(until=end)
        for dev in self.fleet:
            self._touch(dev, end)
        for task in self.tasks:
            if task.state is TaskState.RUNNING:
                dev = self.fleet[task.device]
                self._detach(task, dev, end)
                task.finish(TaskState.CANCELLED, end, "horizon")
            elif task.state is TaskState.PENDING:
                task.finish(TaskState.CANCELLED, end, "horizon")
        for dev in self.fleet:
            if dev.below20 and dev.idx not in self.data.below20_at:
                self.data.below20_at[dev.idx] = end
        if self._progress is not None:
            self._progress(1.0)
        self.data.wall_s = time.perf_counter() - started
        return self.data

    # --- events ------------------------------------------------------------------------------

    def _arrive(self, spec: TaskSpec) -> None:
        task = SimTask(spec)
        self.tasks.append(task)
        self.pending[spec.id] = task
        self.arrived.append(task)

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
            for tid in dev.running:
                self.running[tid].remaining -= rate * elapsed
        dev.t_rate = now
        dev.advance(now)

    def _retime(self, dev: SimDevice, now: float) -> None:
        """After a change, recompute every running task's completion at the new rate."""
        rate = dev.task_rate()
        for tid in dev.running:
            task = self.running[tid]
            task.version += 1
            if rate > 0:
                ev = self.env.timeout(max(task.remaining, 0.0) / rate)
                ev.callbacks.append(partial(self._complete, task, task.version))

    def _show(self, dev: SimDevice, now: float, *, freed: bool = True) -> None:
        """Publish the device's current state as its view; retime its tasks and its next refresh.

        A view refresh alone (``freed=False``) does not force a full placement round: full rounds
        still run every sixth tick, so a device that became eligible is used within a minute.
        """
        self._note_below20(dev, now)
        if not dev.available and dev.running:
            self._lose_all(dev, now)
        dev.view_soc = dev.battery.soc
        dev.view_temp = dev.temp_c
        self.policy.device_changed(dev, now)
        if freed:
            self.freed = True
        self._retime(dev, now)
        self._schedule_refresh(dev, now)

    def _note_below20(self, dev: SimDevice, now: float) -> None:
        if dev.below20 and dev.idx not in self.data.below20_at:
            self.data.below20_at[dev.idx] = now

    def _schedule_refresh(self, dev: SimDevice, now: float) -> None:
        dev.refresh_version += 1
        if not dev.powered or (dev.dead and not dev.plugged):
            return
        sc = self.scenario
        load = dev.load()
        best: float | None = None
        if dev.has_battery:
            soc = dev.battery.soc
            step = sc.refresh_battery_pct / 100.0
            if dev.plugged:
                target = min([soc + step, *(m for m in _SOC_MARKS if m > soc)])
            else:
                target = max([soc - step, *(m for m in _SOC_MARKS if m < soc)])
            if 0.0 <= target < 1.0:
                best = time_to_soc(dev.pspec, dev.battery, load, dev.plugged, dev.temp_c, target)
        watts = power_w(dev.pspec, load)
        ss = steady_state_c(dev.tspec, watts, dev.ambient_c)
        # Below the comfort level no decision reads the temperature (policy bands start at
        # 45 °C, the thermal score is flat below 40 °C, JEITA and throttling act higher), so a
        # device staying there needs no thermal refreshes: most of the fleet, most of the time.
        cool = max(ss, dev.temp_c) < _COMFORT_C - sc.refresh_temp_c
        if not cool and abs(ss - dev.temp_c) > 1e-9:
            sign = 1.0 if ss > dev.temp_c else -1.0
            t = time_to_temp(
                dev.tspec, dev.temp_c, watts, dev.temp_c + sign * sc.refresh_temp_c, dev.ambient_c
            )
            if t is not None and (best is None or t < best):
                best = t
        if best is None:
            return
        ev = self.env.timeout(max(best, _MIN_REFRESH_S))
        ev.callbacks.append(partial(self._refresh, dev, dev.refresh_version))

    def _refresh(self, dev: SimDevice, version: int, _ev: object) -> None:
        if version != dev.refresh_version:
            return
        now = self.env.now
        self._touch(dev, now)
        self._show(dev, now, freed=False)

    # --- tasks -------------------------------------------------------------------------------

    def _round(self, round_no: int, *, full: bool) -> None:
        """Place pending work. A partial round decides only tasks that arrived since the last
        round: nothing freed capacity since then, so the older backlog still fits nowhere."""
        now = self.env.now
        data = self.data
        arrived, self.arrived = self.arrived, []
        if full:
            for task in [t for t in self.pending.values() if t.spec.deadline is not None]:
                if task.spec.deadline is not None and task.spec.deadline <= now:
                    del self.pending[task.id]
                    task.finish(TaskState.FAILED, now, "deadline")
            batch = list(self.pending.values())
            self.freed = False
        else:
            batch = [t for t in arrived if t.state is TaskState.PENDING]
        if not batch:
            return
        t0 = time.perf_counter()
        decision = self.policy.decide(batch, now, round_no)
        data.policy_cpu_s += time.perf_counter() - t0
        data.rounds += 1
        data.task_decisions += len(batch)
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
        for dev in touched.values():
            self._retime(dev, now)
            self._schedule_refresh(dev, now)

    def _requeue(self, task: SimTask) -> None:
        task.state = TaskState.PENDING
        task.device = -1
        task.remaining = task.spec.duration_s
        task.task = msgspec.structs.replace(task.task, attempt=task.attempt)
        self.pending[task.id] = task
        self.arrived.append(task)

    def _start(self, task: SimTask, dev: SimDevice, now: float) -> None:
        del self.pending[task.id]
        spec = task.spec
        dev.running[spec.id] = (spec.cores, spec.memory_mb)
        self.running[spec.id] = task
        dev.fog_cores += spec.cores
        dev.fog_mem += spec.memory_mb
        task.state = TaskState.RUNNING
        task.attempt += 1
        task.device = dev.idx
        task.start = now
        task.remaining = spec.duration_s
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
        self._note_below20(dev, now)
        self._retime(dev, now)
        self._schedule_refresh(dev, now)

    def _detach(self, task: SimTask, dev: SimDevice, now: float) -> None:
        cores, mem = dev.running.pop(task.id)
        del self.running[task.id]
        dev.fog_cores = max(0.0, dev.fog_cores - cores)
        dev.fog_mem -= mem
        if not dev.running:
            dev.fog_cores = 0.0  # no float residue on an idle device
        task.version += 1
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
        room = False
        hist = self.data.temp_hist
        for dev in self.fleet:
            fog_batt += dev.fog_battery_wh
            if not dev.powered:
                continue
            if dev.has_battery:
                by_class.setdefault(dev.device_type.value, []).append(dev.view_soc)
            hist[int(dev.view_temp)] = hist.get(int(dev.view_temp), 0) + 1
            if dev.available and (dev.plugged or dev.view_soc >= 0.2) and dev.view_temp < 65.0:
                eligible += dev.cores
                busy += dev.fog_cores
                if dev.plugged and dev.fog_cores + 1.0 <= dev.cores:
                    room = True
        for cls, socs in sorted(by_class.items()):
            s.setdefault(f"soc_{cls}", []).append(100.0 * sum(socs) / len(socs))
        s.setdefault("fog_battery_wh", []).append(fog_batt)
        s.setdefault("utilisation", []).append(busy / eligible if eligible else 0.0)
        s.setdefault("pending", []).append(len(self.pending))
        self.data.room_at.append((now, room))
