"""Table-driven scorer tests with the arithmetic in each case, and the pipeline's weighting."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fogmesh.devices.model import NetworkType, ThermalLevel
from fogmesh.errors import ConfigError, SchedulingError
from fogmesh.fog.scheduler import (
    ClusterSnapshot,
    NodeView,
    Pipeline,
    PowerSource,
    Reservations,
    RunningTask,
    SchedulerConfig,
    Scorer,
    TaskNeed,
    Weights,
    place,
)
from fogmesh.fog.scheduler.config import CapacityMode
from fogmesh.fog.scheduler.scorers import (
    CapacityScorer,
    ModelScorer,
    NetworkScorer,
    PowerScorer,
    SpeedScorer,
    ThermalScorer,
)
from fogmesh.fog.tasks import ModelPayload, Task, TaskPriority, TaskResources, TaskType
from fogmesh.mobile.policy import (
    ChunkingConfig,
    PowerMode,
    ResourceOptimization,
    TransportPreference,
)

CFG = SchedulerConfig()
SPREAD = SchedulerConfig(capacity_mode=CapacityMode.SPREAD)
B, C, M = PowerSource.BATTERY, PowerSource.CHARGING, PowerSource.MAINS


def opt(cpu: float = 100.0, mem: int | None = None) -> ResourceOptimization:
    return ResourceOptimization(
        power_mode=PowerMode.PERFORMANCE,
        cpu_limit_percent=cpu,
        memory_limit_mb=mem,
        max_concurrent_tasks=8,
        chunking_config=ChunkingConfig(),
        transport_preference=TransportPreference.BALANCED,
        reasons=(),
    )


def node(**kw: Any) -> NodeView:
    kw.setdefault("cpu_cores", 4)
    kw.setdefault("memory_mb", 4096)
    return NodeView(kw.pop("device_id", "n1"), **kw)


def need(cpu: float = 1.0, mem: int = 1024, input_mb: float = 0.0, **kw: Any) -> TaskNeed:
    task = Task(
        id="t1",
        type=TaskType.INFERENCE,
        resources=TaskResources(cpu_cores=cpu, memory_mb=mem, input_mb=input_mb),
        **kw,
    )
    return TaskNeed(task, CFG)


def used(cpu: float, mem: int) -> list[RunningTask]:
    return [RunningTask("r", TaskPriority.LOW, cpu, mem)]


CASES: list[tuple[str, Scorer, NodeView, TaskNeed, float]] = [
    # --- power: battery level and source, the seed's 1.5× charging bonus -------------------
    ("mains", PowerScorer(CFG), node(power=M), need(), 1.0),
    # battery 0.6 × charging 1.5 × scale 0.6 = 0.54
    ("charging 60%", PowerScorer(CFG), node(power=C, battery_percent=60), need(), 0.54),
    # battery 0.6 × unplugged 1 × scale 0.6 = 0.36
    ("unplugged 60%", PowerScorer(CFG), node(power=B, battery_percent=60), need(), 0.36),
    # battery 1.0 × charging 1.5 × scale 0.6 = 0.9 < mains 1.0 (no cap: the bonus is intact)
    ("charging full", PowerScorer(CFG), node(power=C, battery_percent=100), need(), 0.9),
    # battery 1.0 × unplugged 1 × scale 0.6 = 0.6; 0.9 / 0.6 = 1.5
    ("unplugged full", PowerScorer(CFG), node(power=B, battery_percent=100), need(), 0.6),
    # battery 0.1 × charging 1.5 × scale 0.6 = 0.09
    ("charging 10%", PowerScorer(CFG), node(power=C, battery_percent=10), need(), 0.09),
    ("battery unknown", PowerScorer(CFG), node(power=B), need(), 0.0),
    # --- thermal headroom: (65 − t) / (65 − 40) clipped ---------------------------------
    # (65 − 40) / 25 = 1.0
    ("comfortable", ThermalScorer(CFG), node(cpu_temp_c=40), need(), 1.0),
    # (65 − 30) / 25 = 1.4 → clipped to 1.0
    ("cool", ThermalScorer(CFG), node(cpu_temp_c=30), need(), 1.0),
    # (65 − 52.5) / 25 = 0.5
    ("warm", ThermalScorer(CFG), node(cpu_temp_c=52.5), need(), 0.5),
    # (65 − 70) / 25 = −0.2 → clipped to 0.0
    ("over the ceiling", ThermalScorer(CFG), node(cpu_temp_c=70), need(), 0.0),
    ("platform moderate", ThermalScorer(CFG), node(thermal_level=ThermalLevel.MODERATE),
     need(), 0.5),
    # temperature (65 − 45) / 25 = 0.8, platform light 0.75 → the lower: 0.75
    ("both readings", ThermalScorer(CFG),
     node(cpu_temp_c=45, thermal_level=ThermalLevel.LIGHT), need(), 0.75),
    ("no reading", ThermalScorer(CFG), node(), need(), 0.7),
    # --- capacity: u = mean(cpu after / cap, mem after / cap) ---------------------------
    # cpu (1 + 1) / 4 = 0.5, mem (1024 + 1024) / 4096 = 0.5 → u 0.5
    ("binpack half", CapacityScorer(CFG), node(running=used(1, 1024)), need(), 0.5),
    # cpu (0 + 1) / 4 = 0.25, mem 1024 / 4096 = 0.25 → u 0.25
    ("binpack idle", CapacityScorer(CFG), node(), need(), 0.25),
    # spread: 1 − 0.25 = 0.75
    ("spread idle", CapacityScorer(SPREAD), node(), need(), 0.75),
    # policy 50 % of 4 cores = 2: cpu (1 + 1) / 2 = 1.0, mem 2048 / 4096 = 0.5 → u 0.75
    ("binpack throttled", CapacityScorer(CFG), node(optimization=opt(cpu=50),
     running=used(1, 1024)), need(), 0.75),
    # memory budget 2048: cpu 1 / 4 = 0.25, mem 1024 / 2048 = 0.5 → u 0.375, spread 0.625
    ("spread memory budget", CapacityScorer(SPREAD), node(optimization=opt(mem=2048)), need(),
     0.625),
    # --- network cost for large inputs -------------------------------------------------
    # 5 MB < 10 MB: network cost does not matter
    ("small input", NetworkScorer(CFG), node(network_type=NetworkType.CELLULAR),
     need(input_mb=5), 1.0),
    ("large over ethernet", NetworkScorer(CFG), node(network_type=NetworkType.ETHERNET),
     need(input_mb=100), 1.0),
    ("large over wifi", NetworkScorer(CFG), node(network_type=NetworkType.WIFI),
     need(input_mb=100), 0.8),
    # cellular 0.4 × metered 0.5 = 0.2
    ("large over cellular", NetworkScorer(CFG), node(network_type=NetworkType.CELLULAR),
     need(input_mb=100), 0.2),
    # wifi 0.8 × metered 0.5 = 0.4 (a phone's hotspot)
    ("large over metered wifi", NetworkScorer(CFG),
     node(network_type=NetworkType.WIFI, metered=True), need(input_mb=100), 0.4),
    # unknown 0.5 × metered-unless-known 0.5 = 0.25
    ("large over unknown", NetworkScorer(CFG), node(), need(input_mb=100), 0.25),
    # --- speed: s / (s + 1) ---------------------------------------------------------------
    # 1 / (1 + 1) = 0.5
    ("reference speed", SpeedScorer(CFG), node(speed=1.0), need(), 0.5),
    # 3 / (3 + 1) = 0.75
    ("3× faster", SpeedScorer(CFG), node(speed=3.0), need(), 0.75),
    ("stopped", SpeedScorer(CFG), node(speed=0.0), need(), 0.0),
    # --- model already deployed -------------------------------------------------------
    ("no model", ModelScorer(), node(), need(), 1.0),
    ("model deployed", ModelScorer(), node(deployed_models={"m1"}),
     need(payload=ModelPayload("m1")), 1.0),
    ("model to transfer", ModelScorer(), node(), need(payload=ModelPayload("m1")), 0.0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("scorer", "device", "task", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_scorer_table(scorer: Scorer, device: NodeView, task: TaskNeed, expected: float) -> None:
    value = scorer.score(device, task, Reservations())
    assert value == pytest.approx(expected)
    assert scorer.reason(device, task, Reservations())


def test_power_reason_shows_the_arithmetic() -> None:
    s = PowerScorer(CFG)
    assert (
        s.reason(node(power=C, battery_percent=60), need(), Reservations())
        == "battery 0.60 × charging 1.5 × scale 0.6 = 0.54"
    )


@given(st.floats(min_value=0.5, max_value=100.0))
def test_charging_is_worth_exactly_one_and_a_half_at_every_level(pct: float) -> None:
    s = PowerScorer(CFG)
    charging = s.score(node(power=C, battery_percent=pct), need(), Reservations())
    unplugged = s.score(node(power=B, battery_percent=pct), need(), Reservations())
    assert charging / unplugged == pytest.approx(1.5)
    assert unplugged < charging < s.score(node(power=M), need(), Reservations())


def test_a_config_that_would_need_a_cap_is_refused() -> None:
    # 0.8 × 1.5 = 1.2 > 1: a full charging battery would leave [0, 1]
    with pytest.raises(ConfigError, match="battery_scale"):
        SchedulerConfig(battery_scale=0.8)


def test_weights_combine_as_a_weighted_mean() -> None:
    cfg = SchedulerConfig(
        weights=Weights(capacity=1, power=2, thermal=1, network=0, speed=1, model=0)
    )
    pipe = Pipeline(cfg)
    dev = node(power=C, battery_percent=60, cpu_temp_c=52.5, speed=1.0)
    # capacity 0.25 × 1 + power 0.54 × 2 + thermal 0.5 × 1 + speed 0.5 × 1 = 2.33; / 5 = 0.466
    assert pipe.score(dev, need(), Reservations()) == pytest.approx(0.466)
    names = [p.name for p in pipe.breakdown(dev, need(), Reservations())]
    assert names == ["capacity", "power", "thermal", "speed"]  # zero weights are left out


def test_heat_is_penalised_once() -> None:
    pipe = Pipeline(CFG)
    cool = pipe.breakdown(node(cpu_temp_c=40), need(), Reservations())
    hot = pipe.breakdown(node(cpu_temp_c=60), need(), Reservations())
    changed = {a.name for a, b in zip(cool, hot, strict=True) if a.value != b.value}
    assert changed == {"thermal"}


class _Broken(Scorer):
    name = "broken"

    def __init__(self, value: float) -> None:
        self.value = value

    def score(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        return self.value

    def reason(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> str:
        return "broken"


@pytest.mark.parametrize("value", [1.2, -0.1, math.nan])
def test_a_score_out_of_range_is_a_bug_and_raises(value: float) -> None:
    pipe = Pipeline(CFG, scorers=[(PowerScorer(CFG), 1.0), (_Broken(value), 1.0)])
    snap = ClusterSnapshot([node()])
    task = Task(id="t1", type=TaskType.INFERENCE)
    with pytest.raises(SchedulingError, match="broken"):
        pipe.place(snap, [task], now=0.0)


def test_module_place_uses_the_config_weights() -> None:
    # Two devices differing only in power source; with power weighted 0 the tie goes to the id.
    snap = ClusterSnapshot(
        [node(device_id="a", power=B, battery_percent=50), node(device_id="b", power=M)]
    )
    task = Task(id="t1", type=TaskType.INFERENCE)
    assert place(snap, [task], 0.0).placements[0].device_id == "b"
    flat = SchedulerConfig(weights=Weights(power=0))
    assert place(snap, [task], 0.0, config=flat).placements[0].device_id == "a"


class _BadConstant(ModelScorer):
    name = "bad_constant"

    def constant_for(self, need: TaskNeed) -> float | None:
        return 2.0


def test_a_constant_score_out_of_range_raises_too() -> None:
    pipe = Pipeline(CFG, scorers=[(_BadConstant(), 1.0)])
    snap = ClusterSnapshot([node()])
    with pytest.raises(SchedulingError, match="bad_constant"):
        pipe.place(snap, [Task(id="t1", type=TaskType.INFERENCE)], now=0.0)


def test_input_size_is_validated_with_the_task() -> None:
    from fogmesh.errors import InvalidRequest
    from fogmesh.fog.tasks import validate_task

    bad = Task(id="t", type=TaskType.INFERENCE, resources=TaskResources(input_mb=-1.0))
    with pytest.raises(InvalidRequest, match="input_mb"):
        validate_task(bad)
