"""The scheduler: a pure ``place(snapshot, pending, now) -> Plan`` built from small filters and
scorers (DESIGN.md §5). See docs/scheduler.md for every rule, formula and weight."""

from __future__ import annotations

from fogmesh.fog.scheduler.base import (
    PASS,
    Filter,
    Reservations,
    Scorer,
    TaskNeed,
    Verdict,
    VerdictKind,
    never,
    not_now,
)
from fogmesh.fog.scheduler.config import DEFAULT_CONFIG, CapacityMode, SchedulerConfig, Weights
from fogmesh.fog.scheduler.eviction import battery_evictions
from fogmesh.fog.scheduler.explain import (
    Candidate,
    Failure,
    Placement,
    Plan,
    PlanStats,
    Preemption,
    ReasonCount,
    Rejection,
    ScorePart,
    Unplaced,
)
from fogmesh.fog.scheduler.pipeline import Pipeline, effective_priority, place
from fogmesh.fog.scheduler.snapshot import (
    ClusterSnapshot,
    NodeView,
    PowerSource,
    RunningTask,
    estimate_speed,
    node_from_profile,
)

__all__ = [
    "DEFAULT_CONFIG",
    "PASS",
    "Candidate",
    "CapacityMode",
    "ClusterSnapshot",
    "Failure",
    "Filter",
    "NodeView",
    "Pipeline",
    "Placement",
    "Plan",
    "PlanStats",
    "PowerSource",
    "Preemption",
    "ReasonCount",
    "Rejection",
    "Reservations",
    "RunningTask",
    "SchedulerConfig",
    "ScorePart",
    "Scorer",
    "TaskNeed",
    "Unplaced",
    "Verdict",
    "VerdictKind",
    "Weights",
    "battery_evictions",
    "effective_priority",
    "estimate_speed",
    "never",
    "node_from_profile",
    "not_now",
    "place",
]
