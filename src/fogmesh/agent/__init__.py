"""The device agent: runs the fog's tasks on this device under enforced limits."""

from __future__ import annotations

from fogmesh.agent.runner import LIMITERS, RunLimits, RunnerConfig, RunOutcome, TaskRunner

__all__ = ["LIMITERS", "RunLimits", "RunOutcome", "RunnerConfig", "TaskRunner"]
