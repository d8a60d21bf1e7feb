"""Property tests: no over-commit, every hard constraint holds, no starvation, nothing lost.

The hard-constraint check below is written independently of the filters, from the rules in
docs/scheduler.md, so a filter bug shows up as a disagreement.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogmesh.devices.model import DeviceType, NetworkType, ThermalLevel
from fogmesh.fog.scheduler import (
    ClusterSnapshot,
    NodeView,
    Plan,
    PowerSource,
    RunningTask,
    SchedulerConfig,
    place,
)
from fogmesh.fog.scheduler.config import CapacityMode
from fogmesh.fog.tasks import Task, TaskConstraints, TaskPriority, TaskResources, TaskType
from fogmesh.mobile.policy import (
    ChunkingConfig,
    PowerMode,
    ResourceOptimization,
    TransportPreference,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SITES = ["a", "b"]
MODELS = ["m1", "m2"]


@st.composite
def optimizations(draw: st.DrawFn) -> ResourceOptimization | None:
    if draw(st.booleans()):
        return None
    return ResourceOptimization(
        power_mode=draw(st.sampled_from(list(PowerMode))),
        cpu_limit_percent=draw(st.floats(5.0, 100.0)),
        memory_limit_mb=draw(st.one_of(st.none(), st.integers(128, 8192))),
        max_concurrent_tasks=draw(st.integers(0, 4)),
        chunking_config=ChunkingConfig(),
        transport_preference=TransportPreference.BALANCED,
        reasons=(),
    )


@st.composite
def running_tasks(draw: st.DrawFn, prefix: str) -> list[RunningTask]:
    n = draw(st.integers(0, 3))
    return [
        RunningTask(
            f"{prefix}-r{i}",
            draw(st.sampled_from(list(TaskPriority))),
            draw(st.sampled_from([0.25, 0.5, 1.0, 2.0])),
            draw(st.sampled_from([64, 256, 1024])),
            started_at=draw(st.floats(0, 100)),
        )
        for i in range(n)
    ]


@st.composite
def nodes(draw: st.DrawFn, device_id: str) -> NodeView:
    power = draw(st.sampled_from(list(PowerSource)))
    return NodeView(
        device_id,
        device_type=draw(st.sampled_from(list(DeviceType))),
        cpu_cores=draw(st.sampled_from([1, 2, 4, 8])),
        memory_mb=draw(st.sampled_from([512, 2048, 8192])),
        has_gpu=draw(st.booleans()),
        power=power,
        battery_percent=draw(st.one_of(st.none(), st.floats(0, 100))),
        cpu_temp_c=draw(st.one_of(st.none(), st.floats(20, 90))),
        thermal_level=draw(st.one_of(st.none(), st.sampled_from(list(ThermalLevel)))),
        network_type=draw(st.one_of(st.none(), st.sampled_from(list(NetworkType)))),
        metered=draw(st.one_of(st.none(), st.booleans())),
        site=draw(st.one_of(st.none(), st.sampled_from(SITES))),
        speed=draw(st.floats(0.1, 3.0)),
        deployed_models=draw(st.frozensets(st.sampled_from(MODELS))),
        optimization=draw(optimizations()),
        running=draw(running_tasks(device_id)),
    )


@st.composite
def tasks(draw: st.DrawFn, task_id: str) -> Task:
    constraints = TaskConstraints(
        device_types=draw(
            st.one_of(st.none(), st.frozensets(st.sampled_from(list(DeviceType)), min_size=1))
        ),
        min_battery_percent=draw(st.one_of(st.none(), st.floats(0, 100))),
        requires_charging=draw(st.booleans()),
        requires_unmetered=draw(st.booleans()),
        requires_model=draw(st.one_of(st.none(), st.sampled_from(MODELS))),
        site=draw(st.one_of(st.none(), st.sampled_from(SITES))),
    )
    return Task(
        id=task_id,
        type=TaskType.INFERENCE,
        priority=draw(st.sampled_from(list(TaskPriority))),
        resources=TaskResources(
            cpu_cores=draw(st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0])),
            memory_mb=draw(st.sampled_from([64, 256, 1024, 4096])),
            requires_gpu=draw(st.booleans()),
            estimated_duration=draw(st.sampled_from([10.0, 120.0, 900.0])),
        ),
        constraints=constraints if draw(st.booleans()) else TaskConstraints(),
        created_at=draw(st.floats(0, 1000)),
    )


@st.composite
def configs(draw: st.DrawFn) -> SchedulerConfig:
    return SchedulerConfig(
        sample_k=draw(st.one_of(st.none(), st.integers(1, 8))),
        scan_below=draw(st.integers(0, 8)),  # small: make small fleets take the sampling path
        max_probes=draw(st.integers(1, 64)),
        capacity_mode=draw(st.sampled_from(list(CapacityMode))),
        max_tasks_per_node=draw(st.one_of(st.none(), st.integers(1, 4))),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[NodeView], list[Task], SchedulerConfig, int]:
    n = draw(st.integers(0, 16))
    fleet = [draw(nodes(f"d{i:02d}")) for i in range(n)]
    m = draw(st.integers(1, 16))
    pending = [draw(tasks(f"t{i:02d}")) for i in range(m)]
    return fleet, pending, draw(configs()), draw(st.integers(0, 2**32))


def satisfies(n: NodeView, t: Task, cfg: SchedulerConfig) -> bool:
    """Every hard rule, restated from the documentation."""
    r, c = t.resources, t.constraints
    battery = n.power is PowerSource.BATTERY
    pct = n.battery_percent
    return not (
        (r.requires_gpu and not n.has_gpu)
        or r.cpu_cores > n.cpu_cores
        or r.memory_mb > n.memory_mb
        or (c.device_types is not None and n.device_type not in c.device_types)
        or (c.site is not None and n.site != c.site)
        or (c.requires_model is not None and c.requires_model not in n.deployed_models)
        or (n.power_mode is PowerMode.CRITICAL and t.priority is not TaskPriority.CRITICAL)
        or (n.cpu_temp_c is not None and n.cpu_temp_c >= cfg.thermal_ceiling_c)
        or (n.thermal_level is not None and n.thermal_level >= cfg.thermal_level_ceiling)
        or (c.requires_unmetered and n.is_metered)
        or (
            battery
            and (
                pct is None
                or pct < cfg.battery_floor_percent
                or c.requires_charging
                or (c.min_battery_percent is not None and pct < c.min_battery_percent)
                or (
                    r.estimated_duration >= cfg.long_task_s
                    and pct < cfg.long_task_min_battery_percent
                )
            )
        )
    )


def load_after(plan: Plan, fleet: list[NodeView], tasks_by_id: dict[str, Task]) -> dict[str, Any]:
    gone = {p.task_id for p in plan.preempted}
    out: dict[str, Any] = {}
    for n in fleet:
        kept = [t for t in n.running if t.task_id not in gone]
        out[n.device_id] = [
            sum(t.cpu_cores for t in kept),
            sum(t.memory_mb for t in kept),
            len(kept),
        ]
    for p in plan.placements:
        r = tasks_by_id[p.task_id].resources
        acc = out[p.device_id]
        acc[0] += r.cpu_cores
        acc[1] += r.memory_mb
        acc[2] += 1
    return out


@SETTINGS
@given(scenarios())
def test_plan_invariants(
    scenario: tuple[list[NodeView], list[Task], SchedulerConfig, int],
) -> None:
    """One generated fleet and queue, three properties (generation is the expensive part)."""
    fleet, pending, cfg, seed = scenario
    snap = ClusterSnapshot(fleet)
    plan = place(snap, pending, now=1000.0, config=cfg, rng_seed=seed)
    check_no_over_commit(plan, fleet, pending, cfg)
    check_hard_constraints(plan, fleet, pending, cfg)
    check_preemptions(plan, fleet, cfg)
    assert place(snap, pending, now=1000.0, config=cfg, rng_seed=seed) == plan  # deterministic


def check_no_over_commit(
    plan: Plan, fleet: list[NodeView], pending: list[Task], cfg: SchedulerConfig
) -> None:
    by_id = {n.device_id: n for n in fleet}
    load = load_after(plan, fleet, {t.id: t for t in pending})
    for device_id in {p.device_id for p in plan.placements}:
        n = by_id[device_id]
        cpu, mem, count = load[device_id]
        cap = n.slot_cap
        if cfg.max_tasks_per_node is not None:
            cap = min(cap, cfg.max_tasks_per_node)
        # The runner holds the work to cpu_cap; reservations may round it to a whole core.
        assert cpu <= n.cpu_fit + 1e-6, (device_id, cpu, n.cpu_fit)
        assert n.cpu_fit <= n.cpu_cap + 0.5
        assert mem <= n.mem_cap, (device_id, mem, n.mem_cap)
        assert count <= cap, (device_id, count, cap)


def check_hard_constraints(
    plan: Plan, fleet: list[NodeView], pending: list[Task], cfg: SchedulerConfig
) -> None:
    by_id = {n.device_id: n for n in fleet}
    tasks_by_id = {t.id: t for t in pending}
    for p in plan.placements:
        assert satisfies(by_id[p.device_id], tasks_by_id[p.task_id], cfg), p.explain()
    # every task is accounted for exactly once, and every score is in [0, 1]
    ids = [e.task_id for e in (*plan.placements, *plan.unplaced, *plan.failed)]
    assert sorted(ids) == sorted(tasks_by_id)
    assert all(0.0 <= p.score <= 1.0 for p in plan.placements)


def check_preemptions(plan: Plan, fleet: list[NodeView], cfg: SchedulerConfig) -> None:
    """Preempted work was running there, was preemptible, and is listed for requeueing."""
    by_id = {n.device_id: n for n in fleet}
    evicting = {p.task_id: p for p in plan.placements if p.preempts}
    assert len({v.task_id for v in plan.preempted}) == len(plan.preempted)
    for v in plan.preempted:
        running = {t.task_id: t for t in by_id[v.device_id].running}
        assert v.task_id in running
        assert running[v.task_id].priority <= cfg.preemptible_max_priority
        by = evicting[v.by_task_id]
        assert by.priority is TaskPriority.CRITICAL and by.device_id == v.device_id
        assert v.task_id in by.preempts


@st.composite
def starvation_scenarios(draw: st.DrawFn) -> tuple[list[NodeView], list[Task], int]:
    anchor = NodeView(
        "anchor",
        device_type=DeviceType.DESKTOP,
        cpu_cores=4,
        memory_mb=8192,
        has_gpu=True,
        site="a",
        network_type=NetworkType.ETHERNET,
        deployed_models=MODELS,
    )
    others = [draw(nodes(f"d{i:02d}")) for i in range(draw(st.integers(0, 10)))]
    pending = []
    for i in range(draw(st.integers(1, 15))):
        t = draw(tasks(f"t{i:02d}"))
        c = t.constraints
        # feasible on the (empty) anchor: it is a desktop at site a with every model
        pending.append(
            Task(
                id=t.id,
                type=t.type,
                priority=t.priority,
                resources=t.resources,
                created_at=t.created_at,
                constraints=TaskConstraints(
                    device_types=None
                    if c.device_types is None
                    else c.device_types | {DeviceType.DESKTOP},
                    min_battery_percent=c.min_battery_percent,
                    requires_charging=c.requires_charging,
                    requires_unmetered=c.requires_unmetered,
                    requires_model=c.requires_model,
                    site=None if c.site is None else "a",
                ),
            )
        )
    return [anchor, *others], pending, draw(st.integers(0, 2**32))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(starvation_scenarios(), st.integers(0, 3))
def test_every_task_is_eventually_placed_under_aging(
    scenario: tuple[list[NodeView], list[Task], int], stream: int
) -> None:
    """Rounds 30 s apart; each round's placements finish before the next; ``stream`` fresh
    HIGH tasks arrive every round. The original tasks must all be placed."""
    fleet, original, seed = scenario
    snap = ClusterSnapshot(fleet)  # never applied: every placement finishes within its round
    pending = {t.id: t for t in original}
    waiting = set(pending)
    rounds = 0
    while waiting:
        now = 1000.0 + 30.0 * rounds
        for j in range(stream):
            tid = f"h{rounds:03d}-{j}"
            pending[tid] = Task(
                id=tid,
                type=TaskType.INFERENCE,
                priority=TaskPriority.HIGH,
                resources=TaskResources(cpu_cores=4.0, memory_mb=64),
                created_at=now,
            )
        plan = place(snap, list(pending.values()), now, rng_seed=seed + rounds)
        for p in plan.placements:
            del pending[p.task_id]
            waiting.discard(p.task_id)
        for f in plan.failed:
            del pending[f.task_id]
            waiting.discard(f.task_id)
        rounds += 1
        # the anchor takes at least the top task each round; aging lifts the originals above
        # fresh HIGH work after at most (7 − 1) × 60 s = 12 rounds, plus the originals' own queue
        assert rounds <= 12 + 2 * len(original) + 40, sorted(waiting)
