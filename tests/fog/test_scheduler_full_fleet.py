"""A round on a full fleet stops evaluating once no device has room: a queue of thousands of
tasks must not make every scheduling round cost O(queue × devices)."""

from __future__ import annotations

import msgspec
from test_scheduler import node, opt, task

from fogmesh.fog.scheduler import ClusterSnapshot, SchedulerConfig, place
from fogmesh.fog.tasks import Task, TaskPriority


def test_once_the_fleet_is_full_the_rest_are_refused_without_evaluating() -> None:
    snap = ClusterSnapshot([node(f"n{i}", optimization=opt(tasks=2)) for i in range(3)])
    # Shapes differ, so the per-shape failure cache cannot answer for them.
    pending = [task(f"t{i:04d}", cpu=0.1 + (i % 50) / 100, created_at=i) for i in range(2000)]
    plan = place(snap, pending, 0.0)
    assert len(plan.placements) == 6
    assert len(plan.unplaced) == 1994
    first, *rest = plan.unplaced
    assert first.counts[0].code == "slots_busy"  # the first keeps its own full explanation
    assert all(f"as for {first.task_id}" in u.summary for u in rest)
    assert plan.stats.evaluated <= 30  # the placements and one refusal, not 2,000 scans


def test_critical_work_is_still_considered_for_preemption_on_a_full_fleet() -> None:
    snap = ClusterSnapshot([node("a", optimization=opt(tasks=1))])
    pending = [task(f"n{i}", created_at=i) for i in range(5)]
    pending.append(task("crit", TaskPriority.CRITICAL, created_at=10))
    first = place(snap, pending[:1], 0.0)
    snap.apply(first, 0.0)
    plan = place(snap, pending[1:], 0.0)
    assert [p.task_id for p in plan.placements] == ["crit"]
    assert [p.task_id for p in plan.preempted] == ["n0"]


def test_an_empty_fleet_still_says_there_are_no_devices() -> None:
    plan = place(ClusterSnapshot([]), [task("t")], 0.0)
    assert "no devices" in plan.unplaced[0].summary


def _short(tid: str, **kw: object) -> Task:
    t = task(tid, **kw)  # type: ignore[arg-type]
    return msgspec.structs.replace(
        t, resources=msgspec.structs.replace(t.resources, estimated_duration=0.5)
    )


def test_short_tasks_queue_behind_full_slots_and_long_ones_do_not() -> None:
    snap = ClusterSnapshot([node("a", cpu_cores=8, optimization=opt(tasks=2))])
    shorts = [_short(f"s{i:02d}", cpu=0.1, mem=128, created_at=i) for i in range(20)]
    plan = place(snap, shorts, 0.0)
    # 2 slots + 2 × 4 queue places (NodeView.queue_cap), then the device is full
    assert len(plan.placements) == 10 and len(plan.unplaced) == 10
    snap.apply(plan, 0.0)
    longer = place(snap, [task("long", cpu=0.1, created_at=99)], 0.0)
    assert not longer.placements
    assert longer.unplaced[0].counts[0].code == "slots_busy"


def test_queueing_can_be_turned_off() -> None:
    snap = ClusterSnapshot([node("a", cpu_cores=8, optimization=opt(tasks=2))])
    shorts = [_short(f"s{i:02d}", cpu=0.1, created_at=i) for i in range(5)]
    plan = place(snap, shorts, 0.0, config=SchedulerConfig(queue_task_max_s=0))
    assert len(plan.placements) == 2


def test_a_long_task_waits_for_a_slot_while_short_ones_still_queue() -> None:
    snap = ClusterSnapshot([node("a", cpu_cores=8, optimization=opt(tasks=1))])
    plan = place(snap, [task("long0", cpu=0.1), task("long1", cpu=0.1, created_at=1)], 0.0)
    assert [p.task_id for p in plan.placements] == ["long0"]
    assert "slots_busy" in {c.code for c in plan.unplaced[0].counts}
    snap.apply(plan, 0.0)
    plan = place(snap, [_short("s", cpu=0.1), task("long2", cpu=0.1, created_at=2)], 0.0)
    assert [p.task_id for p in plan.placements] == ["s"]
