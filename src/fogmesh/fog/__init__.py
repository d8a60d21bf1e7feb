"""The fog: tasks, the pure scheduler and clusters, lifecycle rules and the FogCoordinator."""

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
