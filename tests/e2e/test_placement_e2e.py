"""Placement by what agents accept, with real processes: a coordinator and two agents on
127.0.0.1, only one of which allows the tasks' module. Every task runs there at its first
attempt — none is offered to the agent that would refuse it (no refusal loop, nothing burnt) —
and a task no agent accepts waits, with the reason in ``explain``."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import Fog, wait_until

pytestmark = pytest.mark.slow

MEAN = "statistics:mean"  # stdlib: allowed only where --allow-module statistics says so


def _ready(fog: Fog, n: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        devices = [d for d in fog.devices() if d["status"] == "ready" and d["connected"]]
        return devices if len(devices) >= n else None

    return wait_until(ready, 60, f"{n} connected ready devices")


def test_tasks_go_only_to_the_agent_that_allows_their_module(fog: Fog) -> None:
    fog.start_coordinator()
    fog.start_agent("plain")
    fog.start_agent("lab", extra=["--allow-module", "statistics"])
    devices = _ready(fog, 2)
    lab_state = (fog.root / "lab" / "agent" / "agent.json").read_text()
    lab = next(d["device_id"] for d in devices if d["device_id"] in lab_state)

    ids = {fog.submit(MEAN, {"data": [i, i + 2]}, max_attempts=1): i + 1 for i in range(10)}
    wait_until(
        lambda: all(fog.task(t)["state"] in ("completed", "failed") for t in ids),
        60,
        "10 tasks to finish",
    )
    for task_id, mean in ids.items():
        task = fog.task(task_id)
        assert task["state"] == "completed", task
        assert task["result"] == mean and task["assigned_device"] == lab
        assert [h["outcome"] for h in task["history"]] == ["completed"], task["history"]
    metrics = fog.api("GET", "/metrics").text
    assert "fogmesh_refusals_total 0" in metrics

    # A module neither agent allows: it waits, and says why (no device is tried).
    nowhere = fog.submit("json:dumps", {"obj": 1})

    def explained() -> dict[str, Any] | None:
        why: dict[str, Any] = fog.api("GET", f"/v1/tasks/{nowhere}/explain").json()
        return why if why.get("decision") else None

    why = wait_until(explained, 30, "a scheduling decision for the unplaceable task")
    assert why["state"] == "pending" and why["history"] == []
    assert "not in the device's allow-list" in why["text"], why["text"]
