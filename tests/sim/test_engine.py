"""The fleet run: determinism, conservation, terminal states, and the real scheduler in use."""

from __future__ import annotations

import math
from typing import Any

import pytest

from fogmesh.fog.tasks import TaskState
from fogmesh.sim import baselines
from fogmesh.sim.baselines import POLICY_NAMES, FogmeshPolicy
from fogmesh.sim.engine import RunData, Simulation
from fogmesh.sim.fleet import SimDevice
from fogmesh.sim.metrics import compute_metrics, jain, percentile
from fogmesh.sim.scenario import Scenario
from fogmesh.sim.workloads import SimTask

SMALL = Scenario(devices=40, hours=4, load=0.8, seed=3)


def _run(policy: str, scenario: Scenario = SMALL) -> RunData:
    return Simulation(scenario, policy).run()


def test_same_seed_identical_metrics_different_seed_different() -> None:
    a = compute_metrics(_run("fogmesh")).outcome
    b = compute_metrics(_run("fogmesh")).outcome
    c = compute_metrics(_run("fogmesh", SMALL.with_changes(seed=4))).outcome
    assert a == b
    assert a != c


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_every_task_ends_in_exactly_one_terminal_state(policy: str) -> None:
    data = _run(policy)
    assert data.tasks
    ended = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}
    assert all(t.state in ended and t.end_time is not None for t in data.tasks)
    m = compute_metrics(data).outcome
    assert sum(m["tasks_by_state"].values()) == len(data.tasks)
    assert m["tasks_by_state"]["completed"] > 0
    for t in data.tasks:
        if t.state is TaskState.COMPLETED:
            assert t.first_start is not None and t.end_time is not None
            assert t.end_time > t.first_start >= t.spec.arrival


def test_a_task_cannot_end_twice() -> None:
    data = _run("random", SMALL.with_changes(hours=1))
    done = next(t for t in data.tasks if t.state is TaskState.COMPLETED)
    with pytest.raises(RuntimeError):
        done.finish(TaskState.FAILED, 0.0, "again")


@pytest.mark.parametrize("policy", ["fogmesh", "random"])
def test_energy_is_conserved_per_device(policy: str) -> None:
    data = _run(policy)
    for dev in data.fleet:
        b = dev.battery
        drawn = b.load_from_battery_wh + b.load_from_mains_wh + b.unmet_wh
        # Σ power × time == what the battery and the wall supplied (plus unmet demand)
        assert dev.energy_wh == pytest.approx(drawn, rel=1e-9, abs=1e-9)
        # stored energy moves only by drawing and charging
        start = b.energy_wh + b.load_from_battery_wh - b.charged_wh
        assert 0.0 <= start <= b.capacity_wh + 1e-9
        fog = dev.fog_battery_wh + dev.fog_mains_wh
        assert 0.0 <= fog <= dev.energy_wh + 1e-9
        if not dev.has_battery:
            assert dev.fog_battery_wh == 0.0
    m = compute_metrics(data).outcome
    assert m["device_energy_wh"] == pytest.approx(sum(d.energy_wh for d in data.fleet))


def test_fogmesh_drives_the_real_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = baselines.place

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(baselines, "place", counting)
    sim = Simulation(SMALL.with_changes(hours=1), "fogmesh")
    data = sim.run()
    assert calls and sum(calls) >= data.placements > 0
    assert isinstance(sim.policy, FogmeshPolicy)
    # every view went through mobile.policy.evaluate: the runner's cap is the policy's limit
    for dev in data.fleet:
        assert 0.0 < dev.cap_cores <= dev.cores


class _Checked(Simulation):
    """Checks each placement against what the policy may use at that moment."""

    def _start(self, task: SimTask, dev: SimDevice, now: float) -> None:
        spec = task.spec
        assert dev.available
        if isinstance(self.policy, FogmeshPolicy):
            node = self.policy.snapshot.get(dev.device_id)
            assert node is not None
            # Reservations may round the policy's cap to a whole core (NodeView.cpu_fit); the
            # runner holds what actually runs to the cap.
            assert node.cpu_used + spec.cores <= node.cpu_fit + 1e-9
            assert node.cpu_fit <= node.cpu_cap + 0.5
            if dev.has_battery and not dev.plugged:
                assert dev.view_soc >= 0.2  # battery floor
            assert dev.view_temp < 65.0  # thermal ceiling
        else:
            assert dev.fog_cores + spec.cores <= dev.cores + 1e-9
            assert dev.fog_mem + spec.memory_mb <= dev.memory_mb
        if self.policy.name == "boinc":
            assert not dev.has_battery or (dev.plugged and dev.view_soc >= 0.9)
        super()._start(task, dev, now)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_no_policy_overcommits_or_breaks_its_rules(policy: str) -> None:
    data = _Checked(SMALL.with_changes(load=2.0, hours=3), policy).run()
    assert data.placements > 0


def test_fogmesh_keeps_fog_work_off_batteries_compared_with_random() -> None:
    scenario = Scenario(devices=60, hours=8, seed=5)
    fog = compute_metrics(_run("fogmesh", scenario)).outcome
    rnd = compute_metrics(_run("random", scenario)).outcome
    assert fog["fog_battery_wh"] < rnd["fog_battery_wh"]
    assert fog["task_s_above65"] <= rnd["task_s_above65"]


def test_metric_helpers() -> None:
    assert percentile([], 95) == 0.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile(list(map(float, range(1, 101))), 95) == 95.0
    assert jain([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert jain([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert math.isclose(jain([]), 1.0)


def test_without_fog_work_the_shadow_battery_equals_the_real_one() -> None:
    data = _run("random", SMALL.with_changes(load=1e-9, hours=12))
    assert not data.tasks
    for dev in data.fleet:
        assert dev.battery.energy_wh == pytest.approx(dev.shadow.energy_wh)
        assert not dev.below20 and not dev.below10
        assert dev.fog_battery_wh == 0.0 and dev.fog_mains_wh == 0.0
    # habits alone move batteries: someone charged overnight, someone drained by day
    assert any(d.battery.charged_wh > 0 for d in data.fleet)
    assert any(d.battery.load_from_battery_wh > 0 for d in data.fleet)
