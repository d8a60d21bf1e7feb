"""The fog: tasks, the pure scheduler and clusters, lifecycle rules and the FogCoordinator.

Names load on first use, so ``fogmesh.fog.tasks`` (needed by agents) does not pull in the
coordinator's store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fogmesh.fog.coordinator import CoordinatorConfig, FogCoordinator
    from fogmesh.fog.lifecycle import LifecycleConfig
    from fogmesh.fog.tasks import (
        CommandPayload,
        ModelPayload,
        PythonPayload,
        Task,
        TaskConstraints,
        TaskPriority,
        TaskResources,
        TaskState,
        TaskType,
    )

__all__ = [
    "CommandPayload",
    "CoordinatorConfig",
    "FogCoordinator",
    "LifecycleConfig",
    "ModelPayload",
    "PythonPayload",
    "Task",
    "TaskConstraints",
    "TaskPriority",
    "TaskResources",
    "TaskState",
    "TaskType",
]

_HOME = {
    "CoordinatorConfig": "fogmesh.fog.coordinator",
    "FogCoordinator": "fogmesh.fog.coordinator",
    "LifecycleConfig": "fogmesh.fog.lifecycle",
    **{
        name: "fogmesh.fog.tasks"
        for name in (
            "CommandPayload",
            "ModelPayload",
            "PythonPayload",
            "Task",
            "TaskConstraints",
            "TaskPriority",
            "TaskResources",
            "TaskState",
            "TaskType",
        )
    },
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'fogmesh.fog' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
