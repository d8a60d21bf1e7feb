"""Leases waiting in a device's queue do not run together: a device's CPU and memory use is
counted at its peak — its ``slot_cap`` largest leases — both in the snapshot and within a
round, so a round may fill the queue places of a device with short tasks."""

from __future__ import annotations

import msgspec
from test_scheduler import node, opt, task

from fogmesh.fog.scheduler import ClusterSnapshot, RunningTask, place
from fogmesh.fog.scheduler.base import Reservations, cpu_bound, mem_bound
from fogmesh.fog.tasks import Task, TaskPriority


def _short(tid: str, **kw: object) -> Task:
    t = task(tid, **kw)  # type: ignore[arg-type]
    return msgspec.structs.replace(
        t, resources=msgspec.structs.replace(t.resources, estimated_duration=0.5)
    )


def _lease(tid: str, cpu: float, mem: int = 100) -> RunningTask:
    return RunningTask(tid, TaskPriority.NORMAL, cpu, mem, 0.0, 0.5)


def test_a_device_counts_only_its_slot_cap_largest_leases() -> None:
    leases = [_lease("a", 0.2, 50), _lease("b", 1.5, 300), _lease("c", 0.5, 900), _lease("d", 1.0)]
    n = node("x", cpu_cores=2, optimization=opt(tasks=2), queued_per_slot=4, running=leases)
    assert n.n_running == 4
    assert n.cpu_used == 2.5  # 1.5 + 1.0: two run at once, at most
    assert n.mem_used == 1200  # 900 + 300
    within = node("y", cpu_cores=2, optimization=opt(tasks=2), running=leases[:2])
    assert within.cpu_used == 1.7 and within.mem_used == 350  # no queue: every lease counts


def test_a_round_fills_queue_places_beyond_what_all_at_once_would_allow() -> None:
    # 2 slots on 2 cores (2.5 cores with packing); 0.5-core short tasks: all at once only 5
    # would fit, but only 2 of them run at a time, so every slot and queue place is usable.
    snap = ClusterSnapshot(
        [node("a", cpu_cores=2, memory_mb=8192, optimization=opt(tasks=2), queued_per_slot=4)]
    )
    shorts = [_short(f"s{i:02d}", cpu=0.5, mem=64, created_at=i) for i in range(12)]
    plan = place(snap, shorts, 0.0)
    assert len(plan.placements) == 10  # 2 slots + 2 × 4 queue places
    assert plan.unplaced[0].counts[0].code == "slots_busy"
    snap.apply(plan, 0.0)
    (after,) = list(snap)
    assert after.n_running == 10 and after.cpu_used == 1.0


def test_a_task_too_big_to_run_beside_the_largest_lease_still_waits() -> None:
    snap = ClusterSnapshot(
        [
            node(
                "a",
                cpu_cores=2,
                optimization=opt(tasks=2),
                queued_per_slot=4,
                running=[_lease("big", 2.0)],
            )
        ]
    )
    plan = place(snap, [_short("s", cpu=1.0)], 0.0)
    assert not plan.placements
    assert plan.unplaced[0].counts[0].code == "cpu_busy"


def test_the_round_bound_counts_slot_cap_times_the_largest_placement_at_most() -> None:
    n = node("a", cpu_cores=4, memory_mb=4096, optimization=opt(tasks=3))
    res = Reservations()
    for cpu, mem in ((0.5, 100), (1.0, 50), (0.25, 400)):
        res.add("a", cpu, mem, 1)
    assert cpu_bound(n, res.extra["a"]) == 1.75  # three placements, three slots: the sum
    assert mem_bound(n, res.extra["a"]) == 550
    for _ in range(4):
        res.add("a", 1.0, 400, 1)  # seven now: at most three run at once
    assert cpu_bound(n, res.extra["a"]) == 3.0 and mem_bound(n, res.extra["a"]) == 1200
    res.add("a", -1.0, -400, -1)  # a preempted lease gives its share back
    assert cpu_bound(n, res.extra["a"]) == 3.0  # … of the sum (5.75 − 1), not of the bound


def test_preemption_frees_only_what_leaves_the_peak() -> None:
    # The property test's counter-example: 2 slots on 2 cores (fit 2.5 with packing); leases
    # 2.0 (NORMAL) + 0.5 + 0.5 (LOW), peak 2.0 + 0.5 = 2.5. Evicting both 0.5s frees 0.5 of the
    # peak, not 1.0: the CRITICAL 1.0 would run beside the 2.0 at 3.0 > 2.5. The 2.0 must go,
    # and one 0.5 with it (two slots; a 10-s task takes no queue place): peak 0.5 + 1.0.
    low, normal = TaskPriority.LOW, TaskPriority.NORMAL
    leases = [
        RunningTask("r0", low, 0.5, 64, 0.0, 10.0),
        RunningTask("r1", low, 0.5, 64, 1.0, 10.0),
        RunningTask("r2", normal, 2.0, 64, 2.0, 10.0),
    ]
    n = node("d", cpu_cores=2, memory_mb=512, optimization=opt(tasks=2), running=leases)
    assert n.cpu_used == 2.5 and n.cpu_fit == 2.5
    plan = place(ClusterSnapshot([n]), [task("t", TaskPriority.CRITICAL, cpu=1.0, mem=64)], 0.0)
    (p,) = plan.placements
    assert p.preempts == ("r1", "r2")
    kept = [t.cpu_cores for t in leases if t.task_id not in p.preempts]
    assert sum(sorted([*kept, 1.0])[-2:]) <= n.cpu_fit


def test_evicting_and_restoring_leases_leaves_no_trace_in_later_placements() -> None:
    # Eviction adjusts the sums only: the largest-placement marks stay those of placements.
    res = Reservations()
    res.add("x", 0.5, 64, 1)
    res.adjust("x", -2.0, -900, -1)
    res.adjust("x", 2.0, 900, 1)
    assert res.extra["x"][3:] == [0.5, 64, 1]
