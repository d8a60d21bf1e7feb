"""Work is never burnt on a device that cannot take it: real coordinator and agent processes.

* An agent killed with SIGKILL gets no more work from the moment its link closes, and the leases
  it held go back to the queue without costing their tasks an attempt (another device at its
  site runs them).
* A coordinator killed and kept down longer than three heartbeat intervals, then restarted,
  marks nobody lost before the agents are back: no attempt is charged, nothing finished re-runs.
* A result the coordinator cannot write (its SQLite file may not grow: RLIMIT_FSIZE, the way a
  full disk fails) is kept by the agent and sent again once the store is back: stored once, the
  task not re-run.

The coordinator expects a heartbeat every second (e2e_helpers; the outage test: 2 s).
"""

from __future__ import annotations

import re
import resource
import time
from typing import Any

import pytest
from e2e_helpers import Fog, wait_until

pytestmark = pytest.mark.slow

ECHO = "fogmesh.agent.workloads:echo"
BURN = "fogmesh.agent.workloads:burn"
FINISHED = ("completed", "failed", "cancelled")


def _ready(fog: Fog, n: int) -> dict[str, str]:
    """Agent name → device id, once ``n`` agents are connected and ready."""

    def ready() -> list[dict[str, Any]] | None:
        devices = [d for d in fog.devices() if d["status"] == "ready" and d["connected"]]
        return devices if len(devices) >= n else None

    wait_until(ready, 60, f"{n} connected ready devices")
    return {name: _device_id(fog, name) for name in fog.procs if name != "coordinator"}


def _device_id(fog: Fog, name: str) -> str:
    text = (fog.root / name / "agent" / "agent.json").read_text()
    return next(d["device_id"] for d in fog.devices() if d["device_id"] in text)


def _outcomes(task: dict[str, Any]) -> list[str]:
    return [h["outcome"] for h in task["history"]]


def _all_finished(fog: Fog, ids: list[str]) -> list[dict[str, Any]] | None:
    tasks = [fog.task(i) for i in ids]
    return tasks if all(t["state"] in FINISHED for t in tasks) else None


def _metric(fog: Fog, name: str) -> float:
    text = fog.api("GET", "/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_killed_agent_gets_no_work_and_its_leases_cost_no_attempt(fog: Fog) -> None:
    fog.start_coordinator()
    fog.start_agent("a", site="kitchen")
    fog.start_agent("b", site="office")
    names = _ready(fog, 2)
    # Work only "a" may take (its site), so that it holds leases when it dies.
    held = [
        fog.submit(BURN, {"seconds": 3.0}, max_attempts=1, constraints={"site": "kitchen"})
        for _ in range(2)
    ]
    wait_until(
        lambda: (
            (tasks := [fog.task(i) for i in held])
            and all(t["assigned_device"] == names["a"] for t in tasks)
            and any(t["state"] == "running" for t in tasks)
        ),
        30,
        "a's tasks placed, one running",
    )
    fog.kill("a")
    wait_until(
        lambda: not next(d for d in fog.devices() if d["device_id"] == names["a"])["connected"],
        10,
        "the coordinator to see a's link close",
    )
    fresh = [fog.submit(ECHO, {"x": i}, max_attempts=1) for i in range(20)]
    tasks = wait_until(lambda: _all_finished(fog, fresh), 60, "the new tasks to finish")
    for task in tasks:  # none placed on the dead agent, none failed
        assert task["state"] == "completed", task
        assert task["assigned_device"] == names["b"], task
        assert task["attempt"] == 1 and _outcomes(task) == ["completed"], task

    # a's leases went back to the queue without costing an attempt (max_attempts=1): another
    # device at a's site takes them.
    wait_until(
        lambda: all(_outcomes(fog.task(i))[:1] == ["disconnected"] for i in held),
        30,
        "a's leases to be requeued",
    )
    fog.start_agent("c", site="kitchen")
    tasks = wait_until(lambda: _all_finished(fog, held), 60, "a's tasks to finish")
    c = _device_id(fog, "c")
    for task in tasks:
        assert task["state"] == "completed" and task["assigned_device"] == c, task
        assert _outcomes(task) == ["disconnected", "completed"], task


def test_a_coordinator_outage_charges_no_attempt_and_reruns_nothing(fog: Fog) -> None:
    # Heartbeats every 2 s (lost after 6 s); the agents retry at most every 3 s, so after the
    # restart they come back well inside that window but after the coordinator's first round.
    fog.start_coordinator(heartbeat_interval=2.0)
    fog.start_agent("a", backoff_max=3.0)
    fog.start_agent("b", backoff_max=3.0)
    _ready(fog, 2)
    work = [fog.submit(BURN, {"seconds": 1.0}, max_attempts=1) for _ in range(6)]
    wait_until(lambda: any(fog.task(i)["state"] == "running" for i in work), 30, "a task running")
    fog.kill("coordinator")
    # The outage itself (not a wait for something): longer than three heartbeat intervals and
    # than the dispatch timeout (5 s), long enough for the agents to finish the running tasks
    # and keep their results.
    time.sleep(7.0)
    fog.start_coordinator(heartbeat_interval=2.0)

    tasks = wait_until(lambda: _all_finished(fog, work), 90, "every task to finish")
    for task in tasks:
        assert task["state"] == "completed", task
        assert task["attempt"] == 1 and _outcomes(task) == ["completed"], task
    assert all(d["status"] == "ready" for d in fog.devices())


def test_a_result_the_store_cannot_write_is_sent_again_not_rerun(fog: Fog) -> None:
    fog.start_coordinator()
    fog.start_agent("a")
    _ready(fog, 1)
    task_id = fog.submit(BURN, {"seconds": 1.5}, max_attempts=1)
    wait_until(lambda: fog.task(task_id)["state"] == "running", 30, "the task to start")

    pid = fog.procs["coordinator"].pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    # No file of the coordinator may grow past its first byte: every SQLite write now fails
    # ("database or disk is full"), reads still work.
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
    try:
        wait_until(
            lambda: (
                _metric(fog, "fogmesh_reports_deferred_total") >= 1
                or _metric(fog, 'fogmesh_results_total{status="completed"}') >= 1
            ),
            30,
            "the result to reach the coordinator",
        )
        assert fog.task(task_id)["state"] == "running"
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))

    done = wait_until(
        lambda: (t := fog.task(task_id))["state"] in FINISHED and t,
        30,
        "the result to be stored",
    )
    assert done["state"] == "completed", done
    assert done["attempt"] == 1 and _outcomes(done) == ["completed"], done
    assert done["result"]["rounds"] > 0
    assert _metric(fog, "fogmesh_reports_deferred_total") >= 1
