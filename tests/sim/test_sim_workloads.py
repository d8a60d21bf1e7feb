"""Workload generator: deterministic, day/night shaped, sized to the requested load."""

from __future__ import annotations

import random

import pytest

from fogmesh.sim.scenario import Scenario
from fogmesh.sim.workloads import TASK_MIX, generate_tasks, mean_core_seconds


def test_same_seed_same_tasks_different_seed_different() -> None:
    s = Scenario(devices=10, hours=6)
    a = generate_tasks(s, 200.0, random.Random(1))
    b = generate_tasks(s, 200.0, random.Random(1))
    c = generate_tasks(s, 200.0, random.Random(2))
    assert a == b
    assert a != c


def test_offered_load_matches_the_request() -> None:
    # 24 h, flat profile: offered core-seconds ≈ load × capacity × duration
    s = Scenario(hours=24, diurnal_amplitude=0.0, load=0.5)
    tasks = generate_tasks(s, 400.0, random.Random(3))
    offered = sum(t.cores * t.duration_s for t in tasks)
    assert offered == pytest.approx(0.5 * 400.0 * 86400, rel=0.1)
    assert [t.arrival for t in tasks] == sorted(t.arrival for t in tasks)
    assert all(t.deadline is None or t.deadline > t.arrival for t in tasks)


def test_day_is_busier_than_night() -> None:
    s = Scenario(hours=24, diurnal_amplitude=0.8)
    tasks = generate_tasks(s, 2000.0, random.Random(4))
    night = sum(1 for t in tasks if 0 <= t.arrival < 5 * 3600)  # around the 02:00 trough
    day = sum(1 for t in tasks if 12 * 3600 <= t.arrival < 17 * 3600)  # around the 14:00 peak
    assert day > 3 * night


def test_mean_core_seconds_is_the_mix_average() -> None:
    s = Scenario(mean_task_s=100.0)
    factor = sum(k.share * k.duration_factor for k in TASK_MIX)
    expected = sum(k.share * k.cores * k.duration_factor for k in TASK_MIX) * 100.0 / factor
    assert mean_core_seconds(s) == pytest.approx(expected)
