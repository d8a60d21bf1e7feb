"""Battery-drain filter and node-pressure eviction: fog work must not take a battery below the
floor, whether through one big task, several small ones, or an owner unplugging a busy device."""

from __future__ import annotations

import pytest

from fogmesh.devices.model import DeviceCapabilities, DeviceProfile, DeviceType
from fogmesh.fog.scheduler import (
    PASS,
    ClusterSnapshot,
    NodeView,
    PowerSource,
    Reservations,
    RunningTask,
    SchedulerConfig,
    TaskNeed,
    VerdictKind,
    battery_evictions,
    node_from_profile,
    place,
)
from fogmesh.fog.scheduler.filters import BatteryDrainFilter, default_filters
from fogmesh.fog.tasks import Task, TaskPriority, TaskResources, TaskType
from fogmesh.sim.power import PRESET_SPECS

CFG = SchedulerConfig()  # floor 20 %, reserve 3 %, eviction at floor + 1 %
W = (3.3 - 0.078) / 8  # phone: W per busy core (PureEdgeSim 0.078–3.3 W over 8 cores)


def phone(pct: float, power: PowerSource = PowerSource.BATTERY, **kw: object) -> NodeView:
    return NodeView(
        "p",
        device_type=DeviceType.SMARTPHONE,
        cpu_cores=8,
        memory_mb=6144,
        power=power,
        battery_percent=pct,
        speed=0.7,
        battery_wh=18.75,
        fog_w_per_core=W,
        **kw,  # type: ignore[arg-type]
    )


def job(tid: str, cpu: float, seconds: float, priority: TaskPriority = TaskPriority.NORMAL) -> Task:
    return Task(
        id=tid,
        type=TaskType.TRAINING,
        priority=priority,
        resources=TaskResources(cpu_cores=cpu, memory_mb=256, estimated_duration=seconds),
    )


def wh(cpu: float, seconds: float) -> float:
    # reference core-seconds × W per core ÷ speed 0.7, in Wh
    return cpu * seconds * W / 0.7 / 3600


@pytest.mark.parametrize(
    ("pct", "cpu", "seconds", "passes"),
    [
        # 1 core × 1800 s = 0.288 Wh = 1.53 % of 18.75 Wh: 30 − 1.53 = 28.5 ≥ 23 → pass
        (30.0, 1.0, 1800.0, True),
        # 4 cores × 3 h = 6.90 Wh = 36.8 %: 50 − 36.8 = 13.2 < 23 → not now
        (50.0, 4.0, 10800.0, False),
        # … but from 70 %: 70 − 36.8 = 33.2 ≥ 23 → pass
        (70.0, 4.0, 10800.0, True),
        # 24 % passes the floor, yet even a 1-core 30-min task leaves 22.5 < 23 → not now
        (24.0, 1.0, 1800.0, False),
    ],
)
def test_the_projection_keeps_floor_plus_reserve(
    pct: float, cpu: float, seconds: float, passes: bool
) -> None:
    need = TaskNeed(job("t", cpu, seconds), CFG)
    v = BatteryDrainFilter(CFG).check(phone(pct), need, Reservations())
    assert (v is PASS) is passes
    if not passes:
        assert v.kind is VerdictKind.NOT_NOW and v.code == "battery_drain"
        assert f"{wh(cpu, seconds):.3g} Wh task" in v.text


def test_work_already_leased_counts_too() -> None:
    # a 2-core 2-hour task = 2.30 Wh = 12.3 %: alone 40 − 12.3 = 27.7 → pass; next to one
    # already leased, 40 − 24.6 = 15.4 → not now
    need = TaskNeed(job("t", 2.0, 7200.0), CFG)
    f = BatteryDrainFilter(CFG)
    assert f.check(phone(40.0), need, Reservations()) is PASS
    busy = phone(40.0, running=(RunningTask("r", TaskPriority.NORMAL, 2.0, 256, 0.0, 7200.0),))
    assert busy.fog_wh_committed == pytest.approx(wh(2.0, 7200.0))
    assert f.check(busy, need, Reservations()).code == "battery_drain"


def test_charging_and_mains_devices_are_not_limited() -> None:
    need = TaskNeed(job("t", 4.0, 36000.0), CFG)
    f = BatteryDrainFilter(CFG)
    assert f.check(phone(25.0, PowerSource.CHARGING), need, Reservations()) is PASS
    assert f.check(NodeView("d", cpu_cores=8), need, Reservations()) is PASS


def test_one_plan_does_not_stack_tasks_past_the_floor() -> None:
    # Each 2-core 2-hour task costs 12.3 %: from 70 % one leaves 57.7, two 45.4, three 33.1,
    # four 20.9 (< 23).
    snap = ClusterSnapshot([phone(70.0)])
    plan = place(snap, [job(f"t{i}", 2.0, 7200.0) for i in range(4)], 0.0)
    assert len(plan.placements) == 3
    assert plan.unplaced[0].counts[0].code == "battery_drain"


def test_the_filter_is_in_the_default_pipeline() -> None:
    assert any(isinstance(f, BatteryDrainFilter) for f in default_filters(CFG))


def test_class_defaults_match_the_simulators_published_figures() -> None:
    for dtype in (DeviceType.SMARTPHONE, DeviceType.TABLET, DeviceType.LAPTOP):
        spec = PRESET_SPECS[dtype]
        profile = DeviceProfile(
            device_id="x",
            device_type=dtype,
            capabilities=DeviceCapabilities(cpu_cores_logical=8, has_battery=True),
            battery_percent=80.0,
            charging=False,
        )
        node = node_from_profile(profile)
        assert node.battery_wh == spec.battery_wh
        assert node.fog_w_per_core == pytest.approx((spec.max_w - spec.idle_w) / 8)
    desktop = node_from_profile(
        DeviceProfile(
            device_id="d",
            device_type=DeviceType.DESKTOP,
            capabilities=DeviceCapabilities(has_battery=False),
        )
    )
    assert desktop.battery_wh is None and desktop.power is PowerSource.MAINS


# --- node-pressure eviction ----------------------------------------------------------------


def test_work_is_evicted_at_floor_plus_margin_on_battery_only() -> None:
    running = (
        RunningTask("a", TaskPriority.NORMAL, 1.0, 256),
        RunningTask("b", TaskPriority.CRITICAL, 1.0, 256),
    )
    # 21 % = floor 20 + margin 1: everything stops, CRITICAL too
    assert [t for t, _ in battery_evictions(phone(21.0, running=running), CFG)] == ["a", "b"]
    reason = battery_evictions(phone(21.0, running=running), CFG)[0][1]
    assert "floor 20%" in reason and "requeued" in reason
    assert battery_evictions(phone(21.5, running=running), CFG) == ()
    assert battery_evictions(phone(15.0, PowerSource.CHARGING, running=running), CFG) == ()
    assert battery_evictions(phone(15.0), CFG) == ()  # nothing running


def test_config_rejects_bad_battery_margins() -> None:
    from fogmesh.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        SchedulerConfig(battery_reserve_percent=-1)
    assert err.value.field == "battery_reserve_percent"
