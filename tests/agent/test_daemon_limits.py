"""Limits the daemon hands the runner, and how its heartbeat stretches on a low battery."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_helpers import FakeRunner

from fogmesh.agent.daemon import AgentConfig, AgentDaemon, compute_limits
from fogmesh.devices.emulated import EmulatedSensors, preset
from fogmesh.fog.tasks import Task, TaskResources, TaskType
from fogmesh.mobile.policy import evaluate
from fogmesh.mobile.thresholds import DEFAULT_POLICY


def _task(cores: float, mb: int, duration: float) -> Task:
    resources = TaskResources(cpu_cores=cores, memory_mb=mb, estimated_duration=duration)
    return Task(id="t", type=TaskType.INFERENCE, resources=resources)


@pytest.mark.parametrize(
    ("name", "cores", "mb", "want_cores"),
    [
        # desktop-gpu: performance, 100 % of 16 cores → the task's own 4 cores
        ("desktop-gpu", 4.0, 512, 4.0),
        # laptop-on-battery: balanced, 60 % of 8 cores = 4.8 → the task's 6 cores are cut to 4.8
        ("laptop-on-battery", 6.0, 512, 4.8),
        # phone-hot: power save, 30 % of 8 cores = 2.4 → 2.4
        ("phone-hot", 4.0, 512, 2.4),
    ],
)
def test_limits_are_the_task_capped_by_policy(
    name: str, cores: float, mb: int, want_cores: float
) -> None:
    profile = preset(name)
    optimization = evaluate(profile, DEFAULT_POLICY)
    limits = compute_limits(
        _task(cores, mb, 10.0), optimization, profile.capabilities.cpu_cores_logical, 3.0
    )
    assert limits.cpu_cores == pytest.approx(want_cores)
    budget = profile.capabilities.cpu_cores_logical * optimization.cpu_limit_percent / 100
    assert limits.device_cpu_cores == pytest.approx(budget)  # shared by all running tasks
    want_mb = mb if optimization.memory_limit_mb is None else min(mb, optimization.memory_limit_mb)
    assert limits.memory_mb == want_mb
    assert limits.timeout_s == 30.0  # 10 s estimate × 3


async def test_heartbeat_is_stretched_on_low_battery(tmp_path: Path) -> None:
    sensors = EmulatedSensors(preset("phone-charging"))
    daemon = AgentDaemon(
        AgentConfig(data_dir=tmp_path, heartbeat=10.0), FakeRunner(), sensors=sensors
    )
    daemon._server_interval = 10.0
    await daemon._read()
    assert daemon.heartbeat_interval() == 10.0  # charging: balanced or better
    sensors.update(charging=False, battery_percent=5.0)
    await daemon._read()
    assert daemon.heartbeat_interval() == 20.0  # critical: 10 s × 2, ≤ 2 × the server's 10 s


def test_a_started_notice_is_left_out_when_its_result_goes_in_the_same_frame() -> None:
    from fogmesh.agent.daemon import without_overtaken_starts
    from fogmesh.wire.messages import ResultMsg, Started

    batch = [
        Started(task_id="a", attempt=1),
        Started(task_id="b", attempt=1),
        ResultMsg(task_id="a", attempt=1, status="completed"),
        Started(task_id="c", attempt=2),
        ResultMsg(task_id="c", attempt=1, status="completed"),  # another attempt's result
    ]
    assert without_overtaken_starts(batch) == [batch[1], batch[2], batch[3], batch[4]]
    assert without_overtaken_starts(batch[:2]) == batch[:2]
