"""Table-driven filter tests: one device, one task, the verdict and its arithmetic per row."""

from __future__ import annotations

from typing import Any

import pytest

from fogmesh.devices.model import DeviceType, NetworkType, ThermalLevel
from fogmesh.fog.scheduler import (
    PASS,
    NodeView,
    PowerSource,
    Reservations,
    RunningTask,
    SchedulerConfig,
    TaskNeed,
    VerdictKind,
)
from fogmesh.fog.scheduler.filters import (
    BatteryFloorFilter,
    ChargingFilter,
    ConcurrencyFilter,
    CpuFilter,
    DeviceTypeFilter,
    GpuFilter,
    HardwareFilter,
    LongTaskBatteryFilter,
    MemoryFilter,
    MinBatteryFilter,
    ModelFilter,
    PowerModeFilter,
    SiteFilter,
    ThermalFilter,
    UnmeteredFilter,
    default_filters,
)
from fogmesh.fog.tasks import Task, TaskConstraints, TaskPriority, TaskResources, TaskType
from fogmesh.mobile.policy import (
    ChunkingConfig,
    PowerMode,
    ResourceOptimization,
    TransportPreference,
)

CFG = SchedulerConfig()


def opt(
    mode: PowerMode = PowerMode.PERFORMANCE,
    cpu: float = 100.0,
    mem: int | None = None,
    tasks: int = 8,
) -> ResourceOptimization:
    return ResourceOptimization(
        power_mode=mode,
        cpu_limit_percent=cpu,
        memory_limit_mb=mem,
        max_concurrent_tasks=tasks,
        chunking_config=ChunkingConfig(),
        transport_preference=TransportPreference.BALANCED,
        reasons=(),
    )


def node(**kw: Any) -> NodeView:
    kw.setdefault("cpu_cores", 4)
    kw.setdefault("memory_mb", 4096)
    return NodeView(kw.pop("device_id", "n1"), **kw)


def need(
    *,
    cpu: float = 1.0,
    mem: int = 256,
    gpu: bool = False,
    duration: float = 60.0,
    priority: TaskPriority = TaskPriority.NORMAL,
    config: SchedulerConfig = CFG,
    **constraints: Any,
) -> TaskNeed:
    task = Task(
        id="t1",
        type=TaskType.INFERENCE,
        priority=priority,
        resources=TaskResources(
            cpu_cores=cpu, memory_mb=mem, requires_gpu=gpu, estimated_duration=duration
        ),
        constraints=TaskConstraints(**constraints),
    )
    return TaskNeed(task, config)


def run(tid: str, cpu: float, mem: int, pr: TaskPriority = TaskPriority.LOW) -> RunningTask:
    return RunningTask(tid, pr, cpu, mem)


B = PowerSource.BATTERY
C = PowerSource.CHARGING
M = PowerSource.MAINS
PASSES = (VerdictKind.PASS, "")

CASES: list[tuple[str, Any, NodeView, TaskNeed, tuple[VerdictKind, str]]] = [
    # --- never: what the device is --------------------------------------------------------
    ("type allowed", DeviceTypeFilter(), node(device_type=DeviceType.LAPTOP),
     need(device_types=frozenset({DeviceType.LAPTOP})), PASSES),
    ("type not allowed", DeviceTypeFilter(), node(device_type=DeviceType.SMARTPHONE),
     need(device_types=frozenset({DeviceType.LAPTOP, DeviceType.DESKTOP})),
     (VerdictKind.NEVER, "device_type")),
    ("no type constraint", DeviceTypeFilter(), node(device_type=DeviceType.SMARTPHONE), need(),
     PASSES),
    ("same site", SiteFilter(), node(site="home"), need(site="home"), PASSES),
    ("other site", SiteFilter(), node(site="office"), need(site="home"),
     (VerdictKind.NEVER, "site")),
    ("no site label", SiteFilter(), node(), need(site="home"), (VerdictKind.NEVER, "site")),
    ("gpu task, gpu device", GpuFilter(), node(has_gpu=True), need(gpu=True), PASSES),
    ("gpu task, no gpu", GpuFilter(), node(has_gpu=False), need(gpu=True),
     (VerdictKind.NEVER, "requires_gpu")),
    ("cpu task, no gpu", GpuFilter(), node(has_gpu=False), need(), PASSES),
    ("model deployed", ModelFilter(), node(deployed_models={"m1"}), need(requires_model="m1"),
     PASSES),
    ("model missing", ModelFilter(), node(deployed_models={"m2"}), need(requires_model="m1"),
     (VerdictKind.NEVER, "requires_model")),
    # 8 cores needed > 4 cores on the device, however idle it is
    ("more cores than hardware", HardwareFilter(), node(cpu_cores=4), need(cpu=8),
     (VerdictKind.NEVER, "cpu_hardware")),
    # 8192 MB needed > 4096 MB of RAM
    ("more RAM than hardware", HardwareFilter(), node(memory_mb=4096), need(mem=8192),
     (VerdictKind.NEVER, "memory_hardware")),
    ("exactly the hardware", HardwareFilter(), node(cpu_cores=4, memory_mb=4096),
     need(cpu=4, mem=4096), PASSES),
    # --- the device's own policy ----------------------------------------------------------
    ("critical mode, normal task", PowerModeFilter(), node(optimization=opt(PowerMode.CRITICAL)),
     need(), (VerdictKind.NOT_NOW, "power_critical")),
    ("critical mode, critical task", PowerModeFilter(),
     node(optimization=opt(PowerMode.CRITICAL)), need(priority=TaskPriority.CRITICAL), PASSES),
    ("power save admits work", PowerModeFilter(), node(optimization=opt(PowerMode.POWER_SAVE)),
     need(), PASSES),
    # policy max_concurrent_tasks 0 admits nothing, not even CRITICAL work
    ("policy admits no work", ConcurrencyFilter(CFG), node(optimization=opt(tasks=0)),
     need(priority=TaskPriority.CRITICAL), (VerdictKind.NOT_NOW, "policy_no_work")),
    # 1 running < 2 allowed
    ("one slot left", ConcurrencyFilter(CFG),
     node(optimization=opt(tasks=2), running=[run("a", 0.1, 10)]), need(), PASSES),
    # 2 running = 2 allowed
    ("slots full", ConcurrencyFilter(CFG),
     node(optimization=opt(tasks=2), running=[run("a", 0.1, 10), run("b", 0.1, 10)]), need(),
     (VerdictKind.NOT_NOW, "slots_busy")),
    # fleet cap 1 < policy 8: 1 running = cap
    ("fleet cap below policy", ConcurrencyFilter(SchedulerConfig(max_tasks_per_node=1)),
     node(optimization=opt(tasks=8), running=[run("a", 0.1, 10)]), need(),
     (VerdictKind.NOT_NOW, "slots_busy")),
    # 4 cores × 30 % = 1.2 cores allowed ≥ 1.0 needed
    ("policy share fits", CpuFilter(), node(optimization=opt(cpu=30)), need(cpu=1.0), PASSES),
    # 4 cores × 10 % = 0.4 cores allowed + 0.5 overcommit = 0.9 < 1.0 needed
    ("policy share too small", CpuFilter(), node(optimization=opt(cpu=10)), need(cpu=1.0),
     (VerdictKind.NOT_NOW, "cpu_policy")),
    # 4 cores × 20 % = 0.8 allowed + 0.5 = 1.3 ≥ 1.0: the runner holds the task to 0.8 cores
    ("fractional share rounds up", CpuFilter(), node(optimization=opt(cpu=20)), need(cpu=1.0),
     PASSES),
    # 8 cores × 60 % = 4.8 + 0.5 = 5.3; 4 reserved + 1 = 5 ≤ 5.3: five tasks share 4.8 cores
    ("fifth core of a 4.8 cap", CpuFilter(),
     node(cpu_cores=8, optimization=opt(cpu=60), running=[run("a", 4.0, 100)]), need(cpu=1.0),
     PASSES),
    # 4 cores × 60 % = 2.4 + 0.5 = 2.9; 2 reserved + 1 = 3 > 2.9: 2.4 rounds down to 2
    ("third core of a 2.4 cap", CpuFilter(),
     node(optimization=opt(cpu=60), running=[run("a", 2.0, 100)]), need(cpu=1.0),
     (VerdictKind.NOT_NOW, "cpu_busy")),
    # 4 cores + 0.5 − 3.6 reserved = 0.9 free < 1.0 needed
    ("cpu reserved", CpuFilter(), node(running=[run("a", 3.6, 100)]), need(cpu=1.0),
     (VerdictKind.NOT_NOW, "cpu_busy")),
    # 4 + 0.5 − 3.5 = 1.0 free = 1.0 needed: an exact fit passes
    ("cpu exact fit", CpuFilter(), node(running=[run("a", 3.5, 100)]), need(cpu=1.0), PASSES),
    # 0.1 × 3 reserved: float sum 0.30000000000000004, 0.7 more still fits 1 core
    ("fractional cores", CpuFilter(),
     node(cpu_cores=1, running=[run("a", 0.1, 1), run("b", 0.1, 1), run("c", 0.1, 1)]),
     need(cpu=0.7), PASSES),
    # min(4096 RAM, 512 MB policy) = 512 < 1024 needed
    ("memory policy", MemoryFilter(), node(optimization=opt(mem=512)), need(mem=1024),
     (VerdictKind.NOT_NOW, "memory_policy")),
    # 4096 − 3584 reserved = 512 free < 1024 needed
    ("memory reserved", MemoryFilter(), node(running=[run("a", 0.1, 3584)]), need(mem=1024),
     (VerdictKind.NOT_NOW, "memory_busy")),
    ("memory fits", MemoryFilter(), node(running=[run("a", 0.1, 3072)]), need(mem=1024), PASSES),
    # --- battery and heat -----------------------------------------------------------------
    # battery 8 % < floor 20 %, unplugged
    ("battery below floor", BatteryFloorFilter(CFG), node(power=B, battery_percent=8),
     need(), (VerdictKind.NOT_NOW, "battery_floor")),
    # battery 8 % but charging: the floor does not apply
    ("charging below floor", BatteryFloorFilter(CFG), node(power=C, battery_percent=8),
     need(), PASSES),
    ("battery at floor", BatteryFloorFilter(CFG), node(power=B, battery_percent=20), need(),
     PASSES),
    ("battery unknown", BatteryFloorFilter(CFG), node(power=B), need(),
     (VerdictKind.NOT_NOW, "battery_unknown")),
    ("mains", BatteryFloorFilter(CFG), node(power=M), need(), PASSES),
    # 64.9 °C < ceiling 65 °C
    ("just below ceiling", ThermalFilter(CFG), node(cpu_temp_c=64.9), need(), PASSES),
    # 65 °C ≥ ceiling 65 °C
    ("at the ceiling", ThermalFilter(CFG), node(cpu_temp_c=65.0), need(),
     (VerdictKind.NOT_NOW, "thermal")),
    ("platform severe", ThermalFilter(CFG), node(thermal_level=ThermalLevel.SEVERE), need(),
     (VerdictKind.NOT_NOW, "thermal")),
    ("platform moderate", ThermalFilter(CFG), node(thermal_level=ThermalLevel.MODERATE), need(),
     PASSES),
    # 600 s ≥ 300 s is long; battery 50 % < 60 % needed when unplugged
    ("long task, half battery", LongTaskBatteryFilter(CFG), node(power=B, battery_percent=50),
     need(duration=600), (VerdictKind.NOT_NOW, "long_task_battery")),
    ("long task, high battery", LongTaskBatteryFilter(CFG), node(power=B, battery_percent=80),
     need(duration=600), PASSES),
    ("long task, charging", LongTaskBatteryFilter(CFG), node(power=C, battery_percent=30),
     need(duration=600), PASSES),
    # 60 s < 300 s: not long, 50 % is enough
    ("short task, half battery", LongTaskBatteryFilter(CFG),
     node(power=B, battery_percent=50), need(duration=60), PASSES),
    # --- task constraints -----------------------------------------------------------------
    # battery 40 % < task minimum 50 %
    ("task min battery", MinBatteryFilter(), node(power=B, battery_percent=40),
     need(min_battery_percent=50), (VerdictKind.NOT_NOW, "min_battery")),
    ("task min battery on mains", MinBatteryFilter(), node(power=M),
     need(min_battery_percent=50), PASSES),
    ("requires charging, unplugged", ChargingFilter(), node(power=B, battery_percent=90),
     need(requires_charging=True), (VerdictKind.NOT_NOW, "requires_charging")),
    ("requires charging, charging", ChargingFilter(), node(power=C, battery_percent=10),
     need(requires_charging=True), PASSES),
    ("requires charging, mains", ChargingFilter(), node(power=M),
     need(requires_charging=True), PASSES),
    ("unmetered, cellular", UnmeteredFilter(), node(network_type=NetworkType.CELLULAR),
     need(requires_unmetered=True), (VerdictKind.NOT_NOW, "metered")),
    ("unmetered, wifi", UnmeteredFilter(), node(network_type=NetworkType.WIFI),
     need(requires_unmetered=True), PASSES),
    ("unmetered, metered wifi hotspot", UnmeteredFilter(),
     node(network_type=NetworkType.WIFI, metered=True), need(requires_unmetered=True),
     (VerdictKind.NOT_NOW, "metered")),
    ("unmetered, link unknown", UnmeteredFilter(), node(), need(requires_unmetered=True),
     (VerdictKind.NOT_NOW, "metered")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("flt", "device", "task", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_filter_table(
    flt: Any, device: NodeView, task: TaskNeed, expected: tuple[VerdictKind, str]
) -> None:
    verdict = flt.check(device, task, Reservations())
    assert (verdict.kind, verdict.code) == expected
    if expected[0] is VerdictKind.PASS:
        assert verdict is PASS
    else:
        assert verdict.text  # a reason a person can read


def test_reasons_carry_the_numbers() -> None:
    v = BatteryFloorFilter(CFG).check(node(power=B, battery_percent=8), need(), Reservations())
    assert v.text == "battery 8% < floor 20%, not charging"
    v = CpuFilter().check(node(optimization=opt(cpu=10)), need(cpu=1.0), Reservations())
    assert v.text == "task needs 1 cores; device policy allows 0.4 of 4"


def test_reservations_of_the_same_plan_count() -> None:
    # 4 cores (+ 0.5 overcommit): 2 running + 1.6 reserved earlier in this plan = 3.6; 1 more
    # would make 4.6 > 4.5
    dev = node(running=[run("a", 2.0, 1024)], optimization=opt(tasks=3))
    res = Reservations()
    assert CpuFilter().check(dev, need(cpu=1.0), res) is PASS
    res.add(dev.device_id, 1.6, 2048, 1)
    assert CpuFilter().check(dev, need(cpu=1.0), res).code == "cpu_busy"
    # 4096 − 1024 − 2048 = 1024 free: exactly 1024 fits, 1025 does not
    assert MemoryFilter().check(dev, need(mem=1024), res) is PASS
    assert MemoryFilter().check(dev, need(mem=1025), res).code == "memory_busy"
    # 1 running + 1 reserved = 2 < 3 slots; one more reservation fills them
    assert ConcurrencyFilter(CFG).check(dev, need(), res) is PASS
    res.add(dev.device_id, 0.0, 0, 1)
    assert ConcurrencyFilter(CFG).check(dev, need(), res).code == "slots_busy"


@pytest.mark.parametrize("flt", default_filters(CFG), ids=lambda f: f.name)
def test_a_filter_that_does_not_apply_passes_every_device(flt: Any) -> None:
    plain = need()  # no constraints, short, not critical, no GPU
    devices = [
        node(device_type=t, power=p, battery_percent=pct, site="x", network_type=net)
        for t in DeviceType
        for p, pct in ((B, 1.0), (C, 50.0), (M, None))
        for net in (NetworkType.CELLULAR, None)
    ]
    if not flt.applies(plain):
        assert all(flt.check(d, plain, Reservations()) is PASS for d in devices)


def test_never_rules_run_before_not_now_rules() -> None:
    names = [f.name for f in default_filters(CFG)]
    never_rules = {"device_type", "site", "gpu", "model", "payload", "hardware"}
    last_never = max(i for i, n in enumerate(names) if n in never_rules)
    first_other = min(i for i, n in enumerate(names) if n not in never_rules)
    assert last_never < first_other
