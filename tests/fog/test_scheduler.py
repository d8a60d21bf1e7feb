"""place(): ordering, aging, deadlines, preemption, reservations, reasons, determinism."""

from __future__ import annotations

from typing import Any

import pytest

from fogmesh.devices.model import (
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
    PlatformThermal,
)
from fogmesh.errors import ConfigError, InvalidRequest, SchedulingError
from fogmesh.fog.scheduler import (
    ClusterSnapshot,
    NodeView,
    PowerSource,
    RunningTask,
    SchedulerConfig,
    VerdictKind,
    effective_priority,
    node_from_profile,
    place,
)
from fogmesh.fog.scheduler.index import bucket_key
from fogmesh.fog.tasks import (
    Task,
    TaskConstraints,
    TaskPriority,
    TaskResources,
    TaskState,
    TaskType,
)
from fogmesh.mobile.policy import (
    ChunkingConfig,
    PowerMode,
    ResourceOptimization,
    TransportPreference,
)

B, C, M = PowerSource.BATTERY, PowerSource.CHARGING, PowerSource.MAINS
LOW, NORMAL, HIGH, CRITICAL = (
    TaskPriority.LOW,
    TaskPriority.NORMAL,
    TaskPriority.HIGH,
    TaskPriority.CRITICAL,
)


def opt(mode: PowerMode = PowerMode.PERFORMANCE, tasks: int = 8) -> ResourceOptimization:
    return ResourceOptimization(
        power_mode=mode,
        cpu_limit_percent=100.0,
        memory_limit_mb=None,
        max_concurrent_tasks=tasks,
        chunking_config=ChunkingConfig(),
        transport_preference=TransportPreference.BALANCED,
        reasons=(),
    )


def node(device_id: str, **kw: Any) -> NodeView:
    kw.setdefault("cpu_cores", 4)
    kw.setdefault("memory_mb", 4096)
    kw.setdefault("optimization", opt())
    return NodeView(device_id, **kw)


def task(
    tid: str,
    priority: TaskPriority = NORMAL,
    *,
    cpu: float = 1.0,
    mem: int = 256,
    created_at: float = 0.0,
    gpu: bool = False,
    **kw: Any,
) -> Task:
    return Task(
        id=tid,
        type=TaskType.INFERENCE,
        priority=priority,
        resources=TaskResources(cpu_cores=cpu, memory_mb=mem, requires_gpu=gpu),
        created_at=created_at,
        **kw,
    )


# --- choosing a device ------------------------------------------------------------------------


def test_places_on_the_best_device_and_says_why() -> None:
    snap = ClusterSnapshot(
        [
            node("phone", power=B, battery_percent=60, device_type=DeviceType.SMARTPHONE),
            node("laptop", power=C, battery_percent=60),
            node("desktop", power=M),
        ]
    )
    plan = place(snap, [task("t1")], now=0.0)
    (p,) = plan.placements
    assert p.device_id == "desktop"
    parts = {part.name: part for part in p.breakdown}
    assert parts["power"].value == 1.0 and parts["power"].reason == "mains power = 1.0"
    assert p.score == pytest.approx(sum(x.weight * x.value for x in p.breakdown) / 8.0)
    assert [c.device_id for c in p.runners_up] == ["laptop", "phone"]
    assert "desktop" in p.explain() and "runner-up laptop" in p.explain()


def test_charging_beats_unplugged_and_mains_beats_charging() -> None:
    snap = ClusterSnapshot(
        [
            node("unplugged", power=B, battery_percent=90),
            node("charging", power=C, battery_percent=90),
        ]
    )
    assert place(snap, [task("t")], 0.0).placements[0].device_id == "charging"
    snap.upsert(node("mains", power=M))
    assert place(snap, [task("t")], 0.0).placements[0].device_id == "mains"


def test_rejected_devices_say_not_now_or_never() -> None:
    snap = ClusterSnapshot(
        [
            node("small", cpu_cores=5),
            node("ok", cpu_cores=8),
            node("hot", cpu_cores=8, cpu_temp_c=80),
        ]
    )
    (p,) = place(snap, [task("t", cpu=6.0)], 0.0).placements
    assert p.device_id == "ok"
    why = {r.device_id: (r.kind, r.code) for r in p.rejected}
    # not_now before never: the hot one may pass later, the 5-core one will not
    assert list(why) == ["hot", "small"]
    assert why == {
        "hot": (VerdictKind.NOT_NOW, "thermal"),
        "small": (VerdictKind.NEVER, "cpu_hardware"),
    }


def test_the_index_skips_devices_that_cannot_qualify() -> None:
    snap = ClusterSnapshot([node("gpu", has_gpu=True)] + [node(f"n{i}") for i in range(500)])
    (p,) = place(snap, [task("t", gpu=True)], 0.0).placements
    assert p.device_id == "gpu" and p.evaluated == 1


def test_an_unplaceable_task_says_why_with_counts() -> None:
    nodes = [node(f"m{i:02d}") for i in range(12)]  # no GPU
    nodes += [node(f"p{i}", has_gpu=True, power=B, battery_percent=8) for i in range(3)]
    plan = place(ClusterSnapshot(nodes), [task("t", gpu=True)], 0.0)
    (u,) = plan.unplaced
    assert [(r.count, r.kind, r.code) for r in u.counts] == [
        (12, VerdictKind.NEVER, "requires_gpu"),
        (3, VerdictKind.NOT_NOW, "battery_floor"),
    ]
    assert u.summary == (
        "12 never: requires_gpu (task needs a GPU; device has none); "
        "3 not_now: battery_floor (battery 8% < floor 20%, not charging)"
    )
    assert plan.for_task("t") is u


def test_an_empty_fleet_says_so() -> None:
    (u,) = place(ClusterSnapshot(), [task("t")], 0.0).unplaced
    assert u.summary == "no devices in the fleet"


def test_a_later_task_of_the_same_shape_reuses_the_failed_scan() -> None:
    snap = ClusterSnapshot([node(f"n{i}") for i in range(100)])
    plan = place(snap, [task("a", gpu=True, cpu=1), task("b", gpu=True, cpu=2)], 0.0)
    assert [u.task_id for u in plan.unplaced] == ["a", "b"]
    assert plan.unplaced[1].summary.startswith("as for a")
    assert plan.stats.full_scans == 1 and plan.stats.cached_failures == 1


# --- reservations within one plan ---------------------------------------------------------


def test_a_plan_never_over_commits_a_device() -> None:
    # 2 cores: two 1-core tasks fit, the third does not
    snap = ClusterSnapshot([node("only", cpu_cores=2)])
    plan = place(snap, [task(f"t{i}", created_at=float(i)) for i in range(3)], 10.0)
    assert [p.task_id for p in plan.placements] == ["t0", "t1"]
    (u,) = plan.unplaced
    assert u.task_id == "t2" and u.counts[0].code in {"cpu_busy", "slots_busy"}


def test_reservations_spread_a_batch_over_devices() -> None:
    snap = ClusterSnapshot([node(f"n{i}", cpu_cores=1) for i in range(3)])
    plan = place(snap, [task(f"t{i}") for i in range(3)], 0.0)
    assert sorted(p.device_id for p in plan.placements) == ["n0", "n1", "n2"]


def test_place_does_not_change_the_snapshot() -> None:
    nodes = [node(f"n{i:03d}", cpu_cores=2, power=M) for i in range(200)]
    snap = ClusterSnapshot(nodes)
    before = {k: sorted(g.pos) for k, g in snap.index.buckets.items()}
    plan = place(snap, [task(f"t{i}") for i in range(150)], 0.0)
    assert len(plan.placements) == 150
    assert {k: sorted(g.pos) for k, g in snap.index.buckets.items()} == before
    assert all(n.n_running == 0 for n in snap)


def test_apply_commits_a_plan_and_keeps_the_index_right() -> None:
    snap = ClusterSnapshot([node(f"n{i}", cpu_cores=2) for i in range(4)])
    plan = place(snap, [task(f"t{i}") for i in range(6)], 0.0)
    snap.apply(plan, now=1.0)
    assert sum(n.n_running for n in snap) == 6
    _assert_index_consistent(snap)
    snap.release(plan.placements[0].device_id, [plan.placements[0].task_id])
    assert sum(n.n_running for n in snap) == 5
    _assert_index_consistent(snap)
    snap.remove("n0")
    assert "n0" not in snap and len(snap) == 3
    _assert_index_consistent(snap)


def _assert_index_consistent(snap: ClusterSnapshot) -> None:
    idx = snap.index
    for n in snap:
        key = bucket_key(n, n.cpu_used, n.mem_used, n.n_running)
        assert idx.key_of[n.device_id] == key
        if key is not None:
            assert idx.buckets[key].items[idx.buckets[key].pos[n.device_id]] is n
    assert sum(len(g) for g in idx.buckets.values()) == sum(
        1 for n in snap if idx.key_of[n.device_id] is not None
    )


# --- order: priority, aging, deadlines ----------------------------------------------------


def test_effective_priority_rule() -> None:
    cfg = SchedulerConfig()  # 1 point per 60 s, ordinary work capped at 9.5
    assert effective_priority(task("t", LOW, created_at=0), 0.0, cfg) == 1.0
    # LOW 1 + 300 s / 60 = 6
    assert effective_priority(task("t", LOW, created_at=0), 300.0, cfg) == 6.0
    # LOW 1 + 420 s / 60 = 8 > a fresh HIGH's 7
    assert effective_priority(task("t", LOW), 420.0, cfg) > effective_priority(
        task("h", HIGH, created_at=420.0), 420.0, cfg
    )
    # LOW 1 + 3600 / 60 = 61 → capped at 9.5, still behind a fresh CRITICAL (10)
    assert effective_priority(task("t", LOW), 3600.0, cfg) == 9.5
    assert effective_priority(task("c", CRITICAL, created_at=3600.0), 3600.0, cfg) == 10.0
    # a clock that went backwards does not lower priority
    assert effective_priority(task("t", HIGH, created_at=100.0), 50.0, cfg) == 7.0


def test_higher_priority_goes_first() -> None:
    snap = ClusterSnapshot([node("only", cpu_cores=1)])
    plan = place(snap, [task("low", LOW), task("high", HIGH), task("normal", NORMAL)], 0.0)
    assert [p.task_id for p in plan.placements] == ["high"]


def test_an_old_low_task_beats_a_fresh_high_one() -> None:
    snap = ClusterSnapshot([node("only", cpu_cores=1)])
    # LOW waited 400 s: 1 + 400 / 60 ≈ 7.67 > HIGH 7
    plan = place(snap, [task("low", LOW, created_at=0.0), task("high", HIGH, created_at=400)], 400)
    assert [p.task_id for p in plan.placements] == ["low"]


def test_low_task_is_placed_under_a_steady_stream_of_high_ones() -> None:
    """One slot, one new HIGH task per 30 s round, each finishing within the round."""
    snap = ClusterSnapshot([node("only", cpu_cores=1)])
    pending = {"low": task("low", LOW, created_at=0.0)}
    placed_at = None
    for rnd in range(40):
        now = 30.0 * rnd
        hid = f"high{rnd:02d}"
        pending[hid] = task(hid, HIGH, created_at=now)
        plan = place(snap, list(pending.values()), now)
        (p,) = plan.placements
        del pending[p.task_id]
        if p.task_id == "low":
            placed_at = now
            break
    # LOW overtakes a fresh HIGH once 1 + w / 60 > 7 + w' / 60, i.e. ≥ 6 min older
    assert placed_at is not None and 360.0 <= placed_at <= 420.0


def test_expired_tasks_fail_with_reason_deadline() -> None:
    snap = ClusterSnapshot([node("n")])
    plan = place(snap, [task("late", deadline=99.0), task("ok", deadline=101.0)], 100.0)
    (f,) = plan.failed
    assert (f.task_id, f.reason) == ("late", "deadline")
    assert [p.task_id for p in plan.placements] == ["ok"]


def test_non_pending_or_duplicate_tasks_are_refused() -> None:
    snap = ClusterSnapshot([node("n")])
    running = task("r").__class__(
        id="r", type=TaskType.INFERENCE, state=TaskState.RUNNING, assigned_device="n"
    )
    with pytest.raises(SchedulingError, match="running"):
        place(snap, [running], 0.0)
    with pytest.raises(SchedulingError, match="twice"):
        place(snap, [task("a"), task("a")], 0.0)


# --- preemption ---------------------------------------------------------------------------


def _busy(device_id: str, *running: RunningTask, cores: int = 2, slots: int = 8) -> NodeView:
    return node(device_id, cpu_cores=cores, running=running, optimization=opt(tasks=slots))


def test_critical_task_preempts_the_least_work() -> None:
    snap = ClusterSnapshot(
        [
            # evicting "n1" (NORMAL, 2 cores) frees enough; so would LOW + LOW on a2
            _busy("a", RunningTask("n1", NORMAL, 2.0, 256)),
            _busy("b", RunningTask("l1", LOW, 1.0, 256), RunningTask("l2", LOW, 1.0, 256)),
            _busy("h", RunningTask("h1", HIGH, 2.0, 256)),
        ]
    )
    plan = place(snap, [task("crit", CRITICAL, cpu=2.0)], 0.0)
    (p,) = plan.placements
    # one victim beats two; HIGH work is never preempted
    assert (p.device_id, p.preempts) == ("a", ("n1",))
    (v,) = plan.preempted
    assert (v.task_id, v.device_id, v.by_task_id, v.priority) == ("n1", "a", "crit", NORMAL)
    snap.apply(plan, now=1.0)
    assert [t.task_id for t in snap.get("a").running] == ["crit"]  # type: ignore[union-attr]


def test_preemption_evicts_only_what_is_needed() -> None:
    # 2 cores (+ 0.5 overcommit): LOW 0.5 (young), LOW 0.5 (old), NORMAL 1.0 reserved; a
    # 1.5-core CRITICAL task needs 2.5 − 1.5 = 1 core freed
    snap = ClusterSnapshot(
        [
            _busy(
                "a",
                RunningTask("young", LOW, 0.5, 10, started_at=50.0),
                RunningTask("old", LOW, 0.5, 10, started_at=10.0),
                RunningTask("norm", NORMAL, 1.0, 10),
            )
        ]
    )
    plan = place(snap, [task("crit", CRITICAL, cpu=1.5)], 100.0)
    # lowest priority first: both LOWs (1 core) suffice; the NORMAL one keeps running
    assert sorted(v.task_id for v in plan.preempted) == ["old", "young"]


def test_only_critical_work_preempts() -> None:
    snap = ClusterSnapshot([_busy("a", RunningTask("l", LOW, 2.0, 256))])
    plan = place(snap, [task("high", HIGH, cpu=2.0)], 0.0)
    assert not plan.preempted and [u.task_id for u in plan.unplaced] == ["high"]


def test_preemption_never_bypasses_a_hard_rule() -> None:
    hot = node("hot", cpu_cores=2, cpu_temp_c=90, running=[RunningTask("l", LOW, 2.0, 256)])
    plan = place(ClusterSnapshot([hot]), [task("crit", CRITICAL, cpu=2.0)], 0.0)
    assert not plan.preempted and plan.unplaced[0].summary.endswith(
        "no preemptible work would make room"
    )


def test_preemption_can_be_switched_off() -> None:
    snap = ClusterSnapshot([_busy("a", RunningTask("l", LOW, 2.0, 256))])
    plan = place(
        snap, [task("c", CRITICAL, cpu=2.0)], 0.0, config=SchedulerConfig(preemption=False)
    )
    assert not plan.preempted and plan.unplaced


# --- device policy ------------------------------------------------------------------------


def test_critical_power_mode_admits_only_critical_work() -> None:
    snap = ClusterSnapshot([node("n", optimization=opt(PowerMode.CRITICAL, tasks=1))])
    plan = place(snap, [task("normal", NORMAL), task("crit", CRITICAL)], 0.0)
    assert [p.task_id for p in plan.placements] == ["crit"]
    assert plan.unplaced[0].counts[0].code in {"power_critical", "slots_busy"}


def test_node_from_profile_reads_the_profile() -> None:
    profile = DeviceProfile(
        "phone-1",
        DeviceType.SMARTPHONE,
        capabilities=DeviceCapabilities(
            cpu_cores_logical=8, ram_total_mb=3072, has_battery=True, cpu_freq_mhz=2400
        ),
        battery_percent=55.0,
        charging=True,
        cpu_temp_c=41.0,
        platform_thermal=PlatformThermal("android", 1),
        network_type=NetworkType.WIFI,
        metered=False,
    )
    n = node_from_profile(profile, opt(tasks=2), site="home", deployed_models=["m1"])
    assert (n.power, n.battery_percent, n.cpu_cores, n.memory_mb) == (C, 55.0, 8.0, 3072)
    assert n.speed == pytest.approx(1.2)  # 2400 MHz / 2000
    assert n.slot_cap == 2 and n.site == "home" and "m1" in n.deployed_models
    desktop = DeviceProfile("pc", DeviceType.DESKTOP)  # nothing detected: no battery seen
    assert node_from_profile(desktop, opt()).power is M


def test_node_view_is_immutable_and_validated() -> None:
    n = node("n")
    with pytest.raises(AttributeError):
        n.cpu_cores = 9  # type: ignore[misc]
    with pytest.raises(InvalidRequest):
        NodeView("x", cpu_cores=0)
    with pytest.raises(InvalidRequest):
        NodeView("x", battery_percent=120)
    with pytest.raises(InvalidRequest, match="twice"):
        ClusterSnapshot([node("a"), node("a")])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample_k", 0),
        ("aging_interval_s", 0),
        ("aging_cap", 10),
        ("thermal_comfort_c", 70.0),
        ("capacity_mode", "random"),
        ("preemptible_max_priority", CRITICAL),
    ],
)
def test_bad_config_names_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        SchedulerConfig(**{field: value})


# --- determinism and scale ----------------------------------------------------------------


def _fleet(n: int) -> list[NodeView]:
    kinds = [(M, None), (C, 50.0), (B, 80.0), (B, 30.0), (B, 10.0)]
    return [
        node(
            f"d{i:05d}",
            power=kinds[i % 5][0],
            battery_percent=kinds[i % 5][1],
            cpu_cores=2 + i % 7,
            cpu_temp_c=30.0 + (i * 7) % 45,
            speed=0.5 + (i % 11) / 5,
        )
        for i in range(n)
    ]


def test_same_seed_same_plan() -> None:
    snap = ClusterSnapshot(_fleet(3000))
    tasks = [task(f"t{i}", created_at=float(i % 7)) for i in range(200)]
    a = place(snap, tasks, 10.0, rng_seed=7)
    b = place(snap, tasks, 10.0, rng_seed=7)
    assert a.placed_on() == b.placed_on() and a == b


def test_sampling_looks_at_few_devices_but_finds_rare_ones() -> None:
    snap = ClusterSnapshot(_fleet(5000))
    plan = place(snap, [task("t")], 0.0)
    assert plan.placements[0].evaluated < 200 and not plan.placements[0].full_scan
    # exactly one device can take a 9-core task: sampling misses it, the fallback scan does not
    snap.upsert(node("big", cpu_cores=12))
    plan = place(snap, [task("huge", cpu=9.0)], 0.0)
    assert plan.placements[0].device_id == "big"


def test_sampled_choice_is_close_to_the_full_scan() -> None:
    snap = ClusterSnapshot(_fleet(4000))
    tasks = [task(f"t{i}") for i in range(50)]
    sampled = place(snap, tasks, 0.0)
    full = place(snap, tasks, 0.0, config=SchedulerConfig(sample_k=None))
    mean_sampled = sum(p.score for p in sampled.placements) / 50
    mean_full = sum(p.score for p in full.placements) / 50
    assert mean_full >= mean_sampled >= 0.9 * mean_full


def test_constrained_tasks_sample_the_smallest_group() -> None:
    nodes = _fleet(3000)
    nodes += [node(f"s{i}", site="lab") for i in range(5)]
    snap = ClusterSnapshot(nodes)
    plan = place(snap, [task("t", constraints=TaskConstraints(site="lab"))], 0.0)
    (p,) = plan.placements
    assert p.device_id.startswith("s") and p.evaluated == 5


def test_a_big_batch_fills_the_fleet_exactly() -> None:
    # 600 one-slot devices, 700 tasks in one call: 600 placed, one per device, 100 unplaced
    snap = ClusterSnapshot([node(f"n{i:04d}", optimization=opt(tasks=1)) for i in range(600)])
    plan = place(snap, [task(f"t{i:04d}") for i in range(700)], 0.0)
    assert len(plan.placements) == 600 and len(plan.unplaced) == 100
    assert len({p.device_id for p in plan.placements}) == 600
    assert plan.unplaced[0].counts[0].code == "slots_busy"
    assert plan.stats.cached_failures == 99  # one full scan answers the 99 identical tasks


def test_a_new_heartbeat_is_scored_afresh() -> None:
    snap = ClusterSnapshot([node("a", power=B, battery_percent=90), node("b", power=M)])
    assert place(snap, [task("t")], 0.0).placements[0].device_id == "b"
    # b's battery turns out to be unplugged and low: the memoised score must not survive
    snap.upsert(node("b", power=B, battery_percent=25))
    assert place(snap, [task("t")], 0.0).placements[0].device_id == "a"


def test_node_from_profile_with_the_real_policy() -> None:
    low = DeviceProfile(
        "phone",
        DeviceType.SMARTPHONE,
        capabilities=DeviceCapabilities(cpu_cores_logical=8, ram_total_mb=4096, has_battery=True),
        battery_percent=5.0,
        charging=False,
    )
    n = node_from_profile(low)  # evaluates mobile.policy with its defaults
    assert n.optimization is not None and n.power_mode is PowerMode.CRITICAL
    plan = place(ClusterSnapshot([n]), [task("t")], 0.0)
    assert plan.unplaced and plan.unplaced[0].counts[0].kind is VerdictKind.NOT_NOW
