"""``fogmesh demo``: a small real fog (coordinator + 3 agents as processes) runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_small_fog_demo_runs_checks_and_cleans_up() -> None:
    command = ["demo", "--agents", "3", "--tasks", "8", "--json"]
    run = subprocess.run(
        [sys.executable, "-c", "from fogmesh.cli import main; main()", *command],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)

    assert summary["tasks"]["submitted"] == 8
    assert summary["tasks"].get("completed") == 8, summary["tasks"]
    assert summary["results"] == {"checked": 8, "correct": 8, "wrong": []}
    if summary["model"] is not None:  # the onnx extra is installed: one task ran the model
        assert summary["tasks_per_type"]["inference"] == 1
    devices = {d["name"]: d for d in summary["devices"]}
    assert list(devices) == ["this-machine", "phone-8pct", "desktop"]
    assert devices["phone-8pct"]["tasks"] == 0
    assert sum(d["tasks"] for d in devices.values()) == 8
    assert sum(summary["tasks_per_class"].values()) == 8
    assert summary["policies"]["phone-8pct"]["power_mode"] == "critical"
    # The emulated devices metered their energy: the desktop only from the wall.
    assert summary["energy"]["desktop"]["metered"] is True
    assert summary["energy"]["desktop"]["battery_wh"] == 0.0
    assert summary["energy"]["desktop"]["mains_wh"] > 0.0
    assert summary["energy"]["phone-8pct"]["mains_wh"] == 0.0

    # Coordinator, 3 agents and their worker processes: all gone, temp dir removed.
    assert len(summary["pids"]) >= 4
    assert [pid for pid in summary["pids"] if _alive(pid)] == []
    assert not Path(summary["data_dir"]).exists()
