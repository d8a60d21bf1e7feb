"""The fog end to end: a coordinator process and agent processes on 127.0.0.1, real runner.

One fog goes through every phase (starting processes dominates the cost on a small machine):
tasks run with correct results, never on the phone at 7 % battery → an agent is killed with
SIGKILL mid-task and its task completes elsewhere exactly once → the agent comes back with its
saved identity → the coordinator is killed with SIGKILL mid-workload and restarted: no
acknowledged task lost, none completed twice → SIGTERM stops everything cleanly.
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import Fog, wait_until

pytestmark = pytest.mark.slow

ECHO = "fogmesh.agent.workloads:echo"
BURN = "fogmesh.agent.workloads:burn"
FINISHED = ("completed", "failed", "cancelled")


def _ready(fog: Fog, n: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        devices = [d for d in fog.devices() if d["status"] == "ready" and d["connected"]]
        return devices if len(devices) >= n else None

    return wait_until(ready, 60, f"{n} connected ready devices")


def _completed(fog: Fog) -> int:
    count: int = fog.api("GET", "/v1/status").json()["tasks"]["completed"]
    return count


def _outcomes(task: dict[str, Any]) -> list[str]:
    return [h["outcome"] for h in task["history"]]


def test_fog_end_to_end(fog: Fog) -> None:
    fog.start_coordinator()
    fog.start_agent("a", profile="desktop")
    fog.start_agent("b", profile="laptop-on-battery")
    fog.start_agent("phone", profile="phone-critical-battery")  # 7 %: takes no ordinary work
    devices = _ready(fog, 3)
    names = {}
    for name in ("a", "b", "phone"):
        state = (fog.root / name / "agent" / "agent.json").read_text()
        names[next(d["device_id"] for d in devices if d["device_id"] in state)] = name

    # 1. Tasks run on the agents with correct results, one attempt each.
    ids = {fog.submit(ECHO, {"x": i}): i for i in range(12)}
    wait_until(lambda: _completed(fog) == len(ids), 60, "12 echo tasks to complete")
    phone_id = next(d for d, n in names.items() if n == "phone")
    for task_id, i in ids.items():
        task = fog.task(task_id)
        assert task["result"] == {"x": i} and _outcomes(task) == ["completed"], task
        assert task["assigned_device"] != phone_id
    metrics = fog.api("GET", "/metrics").text
    assert 'fogmesh_ready_devices_by_power_mode{mode="critical"} 1' in metrics
    assert 'fogmesh_results_total{status="completed"} 12' in metrics

    # 2. kill -9 the agent running a task: completed elsewhere, exactly once.
    task_id = fog.submit(BURN, {"seconds": 3.0})
    running = wait_until(
        lambda: (t := fog.task(task_id))["state"] == "running" and t, 30, "the burn to start"
    )
    victim_id = running["assigned_device"]
    fog.kill(names[victim_id])
    done = wait_until(
        lambda: (t := fog.task(task_id))["state"] in FINISHED and t, 60, "the burn to finish"
    )
    assert done["state"] == "completed", done
    assert done["attempt"] == 2 and done["assigned_device"] != victim_id
    assert _outcomes(done).count("completed") == 1 and _outcomes(done)[0] != "completed"

    # 3. The killed agent comes back with its saved identity (no token) and is ready again.
    fog.start_agent(names[victim_id], profile="desktop", join=False)
    wait_until(
        lambda: any(
            d["device_id"] == victim_id and d["status"] == "ready" and d["connected"]
            for d in fog.devices()
        ),
        30,
        "the restarted agent to be ready",
    )

    # 4. kill -9 the coordinator mid-workload, restart it on the same data dir.
    before = _completed(fog)
    work = {fog.submit(BURN if i % 3 == 0 else ECHO, _args(i)): i for i in range(15)}
    wait_until(lambda: _completed(fog) >= before + 2, 60, "part of the workload to finish")
    fog.kill("coordinator")
    fog.start_coordinator()
    wait_until(lambda: _completed(fog) == before + len(work), 90, "the whole workload")
    for task_id, i in work.items():
        task = fog.task(task_id)
        assert task["state"] == "completed", task
        assert _outcomes(task).count("completed") == 1, task
        if i % 3:
            assert task["result"] == {"x": i}
        else:
            assert task["result"]["rounds"] > 0

    # 5. Clean shutdown on SIGTERM: the agent says goodbye (offline at once), then the
    # coordinator stops.
    a_id = next(d for d, n in names.items() if n == "a")
    assert fog.stop("a") == 0, fog.log("a")
    assert next(d for d in fog.devices() if d["device_id"] == a_id)["status"] == "offline"
    assert fog.stop("coordinator") == 0, fog.log("coordinator")
    assert not (fog.coord_dir / "coordinator.json").exists()


def _args(i: int) -> dict[str, object]:
    return {"seconds": 1.0} if i % 3 == 0 else {"x": i}
