"""Task functions that leave processes behind or crash, for the containment tests.

Importable by the runner's workers (and by an agent started with ``--runner
leaky_tasks:make_runner``) when this directory is on ``PYTHONPATH``; allow-listed only there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

from fogmesh.agent.runner import RunnerConfig, TaskRunner

MODULE = "leaky_tasks"


def spawn_session_child(marker: str, then_sleep: float = 0.0) -> dict[str, Any]:
    """Start ``sleep <marker>`` in a session of its own (out of the task's process group),
    never wait for it, then sleep ``then_sleep`` seconds (a task to time out or cancel)."""
    child = subprocess.Popen(
        ["sleep", marker],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if then_sleep:
        time.sleep(then_sleep)
    return {"pid": child.pid}


def double_fork(marker: str) -> dict[str, Any]:
    """The classic daemon: ``setsid -f`` forks, and the forked ``sleep`` is orphaned at once."""
    subprocess.run(["setsid", "-f", "sleep", marker], check=True)
    return {"ok": True}


def segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def make_runner() -> TaskRunner:
    """The agent's runner for the SIGTERM test: this module allowed, commands on, the CPU
    limiter and the containment from ``FOGMESH_TEST_LIMITER`` and ``_CONTAINMENT``."""
    choices: dict[str, Any] = {"cpu_limiter": os.environ.get("FOGMESH_TEST_LIMITER", "auto")}
    containment = os.environ.get("FOGMESH_TEST_CONTAINMENT", "auto")
    if containment != "auto":  # (so that the test can run, and fail, on a runner without it)
        choices["containment"] = containment
    return TaskRunner(
        RunnerConfig(
            allowed_modules=("fogmesh.agent.workloads", MODULE),
            allow_commands=True,
            workers=2,
            **choices,
        )
    )
