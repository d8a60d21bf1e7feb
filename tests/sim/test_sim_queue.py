"""The engine's queues, eviction, honest battery metric, and the capacity the load is sized on."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fogmesh.devices.model import DeviceType, NetworkType
from fogmesh.fog.tasks import TaskPriority, TaskState, TaskType
from fogmesh.mobile.policy import ResourcePolicy
from fogmesh.sim.baselines import Decision
from fogmesh.sim.capacity import capacity_ref_cores, sustained_share
from fogmesh.sim.engine import Simulation
from fogmesh.sim.fleet import SimDevice
from fogmesh.sim.metrics import compute_metrics
from fogmesh.sim.scenario import Scenario
from fogmesh.sim.workloads import SimTask, TaskSpec

WIFI = NetworkType.WIFI
QUIET = Scenario(devices=4, hours=1, load=1e-9, seed=1, offline_per_day=0, failures_per_day=0)


class _Recorder:
    """Wraps a policy's ``decide``: records each batch, places nothing."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, pending: Sequence[SimTask], now: float, round_no: int) -> Decision:
        self.batches.append([t.id for t in pending])
        return Decision()


def _spec(tid: str, arrival: float = 0.0) -> TaskSpec:
    return TaskSpec(tid, arrival, TaskType.TRAINING, TaskPriority.NORMAL, 4.0, 512, 600.0, None)


def test_an_unschedulable_task_is_retried_only_after_an_event() -> None:
    sim = Simulation(QUIET, "random")
    rec = _Recorder()
    sim.policy.decide = rec  # type: ignore[method-assign]
    sim._arrive(_spec("t1"))
    sim._round(1, retry=False)  # decided once, fits nowhere → unschedulable
    assert rec.batches == [["t1"]] and "t1" in sim.unschedulable
    sim._round(2, retry=False)  # nothing new, no event: not decided again
    assert rec.batches == [["t1"]]
    sim._arrive(_spec("t2"))
    sim._round(3, retry=False)  # only the newcomer
    assert rec.batches[-1] == ["t2"]
    sim._round(4, retry=True)  # capacity was freed: the whole pool is retried
    assert sorted(rec.batches[-1]) == ["t1", "t2"]
    assert not sim.freed


def test_the_round_loop_retries_the_pool_when_capacity_is_freed() -> None:
    sim = Simulation(QUIET, "random")
    rec = _Recorder()
    sim.policy.decide = rec  # type: ignore[method-assign]
    sim._arrive(_spec("t1"))
    sim.freed = False
    sim.env.process(sim._rounds())
    sim.env.run(until=QUIET.round_s * 3 + 1)  # rounds 1–3: decided at 1, then left alone
    assert rec.batches == [["t1"]]
    sim.freed = True  # e.g. a task completed
    sim.env.run(until=QUIET.round_s * 4 + 1)
    assert rec.batches[-1] == ["t1"] and len(rec.batches) == 2


def test_fogmesh_never_drives_a_battery_below_20_percent() -> None:
    # A busy fleet of phones that mostly run on battery: baselines drain them, fogmesh's drain
    # filter and eviction keep fog work from ever taking one across 20 %.
    scenario = Scenario(
        devices=40,
        hours=12,
        seed=7,
        load=1.5,
        mix={"smartphone": 0.8, "desktop": 0.2},
        overnight_charging=0.2,
    )
    fog = Simulation(scenario, "fogmesh").run()
    assert fog.driven20 == {}
    assert compute_metrics(fog).outcome["devices_below20_by_fog_while_room"] == 0
    rnd = compute_metrics(Simulation(scenario, "random").run()).outcome
    assert rnd["devices_driven_below20_by_fog"] > 0


def test_evicted_work_is_requeued_and_still_ends_once() -> None:
    scenario = Scenario(devices=40, hours=12, seed=7, load=1.5, overnight_charging=0.0)
    data = Simulation(scenario, "fogmesh").run()
    ended = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}
    assert all(t.state in ended for t in data.tasks)
    if data.evicted:
        assert any(t.attempt > 1 for t in data.tasks)


def test_a_phone_sustains_60_percent_under_the_policy() -> None:
    # 100 %: 0.078 + 3.222 × 1.0 = 3.3 W → 25 + 13 × 3.3 = 67.9 °C ≥ 65 ceiling → no
    # 60 %: load 0.05 + 0.6 → 0.078 + 3.222 × 0.65 = 2.17 W → 53.2 °C, warm → 60 % ≥ 0.6 → yes
    dev = SimDevice(0, DeviceType.SMARTPHONE, soc=0.8, ambient_c=25.0, network_type=WIFI)
    assert sustained_share(dev, ResourcePolicy()) == pytest.approx(0.6)
    # 8 cores × 0.7 speed × 0.6 × battery share 0.5
    assert capacity_ref_cores([dev]) == pytest.approx(8 * 0.7 * 0.6 * 0.5)


def test_utilisation_is_measured_against_what_the_policy_allows() -> None:
    data = Simulation(Scenario(devices=30, hours=3, seed=2), "fogmesh").run()
    out = compute_metrics(data).outcome
    assert 0.0 < out["utilisation_of_eligible"] <= 1.0
    assert 0.0 < out["utilisation_of_hardware"] <= 1.0
    assert out["offered_of_eligible"] > 0.0
    for dev in data.fleet:
        assert dev.busy_eligible_core_s <= dev.eligible_core_s + 1e-6
        assert dev.eligible_core_s <= dev.hw_core_s + 1e-6


def test_clusters_reform_under_the_simulated_clock_only_on_churn() -> None:
    still = compute_metrics(Simulation(QUIET.with_changes(devices=20), "random").run()).outcome
    assert still["cluster_reforms"] == 1  # formed once; nobody joined or left
    assert still["clusters_max"] == 4  # 20 devices / target size 5
    churn = QUIET.with_changes(devices=20, hours=6, offline_per_day=24.0)
    busy = compute_metrics(Simulation(churn, "random").run()).outcome
    assert busy["cluster_reforms"] > 1
    assert busy["cluster_head_changes"] >= 0
