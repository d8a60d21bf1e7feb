"""The comparison against the best battery-agnostic baseline."""

from __future__ import annotations

from typing import Any

import pytest

from fogmesh.sim.metrics import Metrics
from fogmesh.sim.report import PolicyRun, compare


def _run(policy: str, battery_wh: float, p95: float) -> PolicyRun:
    outcome: dict[str, Any] = {
        "fog_battery_wh": battery_wh,
        "wait_p95_s": p95,
        "devices_below20_by_fog_while_room": 0,
        "task_s_above65": 0.0,
    }
    return PolicyRun(Metrics(policy, outcome, {}), {}, [], {})


def test_compare_picks_the_best_agnostic_baseline_per_target() -> None:
    runs = [
        _run("fogmesh", 30.0, 110.0),
        _run("random", 100.0, 90.0),
        _run("least_loaded", 60.0, 100.0),
        _run("boinc", 0.0, 500.0),  # battery-aware: never the comparison baseline
    ]
    c = compare(runs)
    assert c["battery_baseline"] == "least_loaded"
    assert c["battery_saving_pct"] == pytest.approx(50.0)  # 1 − 30 / 60
    assert c["wait_baseline"] == "random"
    assert c["wait_p95_ratio"] == pytest.approx(110.0 / 90.0)


def test_compare_needs_fogmesh_and_a_baseline() -> None:
    assert compare([_run("random", 1.0, 1.0)]) == {}
    assert compare([_run("fogmesh", 1.0, 1.0), _run("boinc", 1.0, 1.0)]) == {}
