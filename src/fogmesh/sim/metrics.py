"""Per-run metrics (issue 6 §3), computed from a finished ``RunData``.

``outcome`` holds only simulated quantities — identical for identical seeds; ``timing`` holds
wall-clock measurements (scheduler CPU time per decision, run time), which are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fogmesh.fog.tasks import TaskPriority, TaskState
from fogmesh.sim.engine import RunData

__all__ = ["Metrics", "compute_metrics", "jain", "percentile"]


@dataclass(frozen=True, slots=True)
class Metrics:
    policy: str
    outcome: dict[str, Any]
    timing: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "outcome": self.outcome, "timing": self.timing}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1.0 when all equal, 1/n when one takes everything."""
    if not values:
        return 1.0
    s = sum(values)
    sq = sum(v * v for v in values)
    return (s * s) / (len(values) * sq) if sq > 0 else 1.0


def compute_metrics(data: RunData) -> Metrics:
    fleet = data.fleet
    tasks = data.tasks
    states = {s.value: 0 for s in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)}
    reasons: dict[str, int] = {}
    waits: list[float] = []
    deadline_total = {p.name.lower(): 0 for p in TaskPriority}
    deadline_missed = {p.name.lower(): 0 for p in TaskPriority}
    last_completion = 0.0
    for t in tasks:
        states[t.state.value] = states.get(t.state.value, 0) + 1
        reasons[t.end_reason] = reasons.get(t.end_reason, 0) + 1
        if t.first_start is not None:
            waits.append(t.first_start - t.spec.arrival)
        if t.state is TaskState.COMPLETED and t.end_time is not None:
            last_completion = max(last_completion, t.end_time)
        deadline = t.spec.deadline
        if deadline is not None and deadline <= data.scenario.duration_s:
            name = t.spec.priority.name.lower()
            deadline_total[name] += 1
            on_time = (
                t.state is TaskState.COMPLETED and t.end_time is not None and t.end_time <= deadline
            )
            if not on_time:
                deadline_missed[name] += 1
    n = len(tasks)
    battery_devices = [d for d in fleet if d.has_battery]
    utilisation = [
        d.busy_eligible_core_s / d.eligible_core_s for d in fleet if d.eligible_core_s > 0
    ]
    eligible = sum(d.eligible_core_s for d in fleet)
    busy_eligible = sum(d.busy_eligible_core_s for d in fleet)
    hardware = sum(d.hw_core_s for d in fleet)
    busy = sum(d.busy_core_s for d in fleet)
    eligible_ref = sum(d.eligible_ref_s for d in fleet)
    offered = sum(t.spec.cores * t.spec.duration_s for t in tasks)
    first_arrival = tasks[0].spec.arrival if tasks else 0.0
    outcome: dict[str, Any] = {
        "devices": len(fleet),
        "tasks": n,
        "tasks_by_state": states,
        "tasks_by_end_reason": dict(sorted(reasons.items())),
        "completion_pct": 100.0 * states["completed"] / n if n else 0.0,
        "fog_battery_wh": sum(d.fog_battery_wh for d in fleet),
        "fog_mains_wh": sum(d.fog_mains_wh for d in fleet),
        "charging_mains_wh": sum(d.battery.charge_from_mains_wh for d in battery_devices),
        "device_energy_wh": sum(d.energy_wh for d in fleet),
        "devices_below20_by_fog": sum(d.below20 for d in fleet),
        "devices_driven_below20_by_fog": len(data.driven20),
        "devices_below20_by_fog_while_room": sum(room for _, room in data.driven20.values()),
        "devices_below10_by_fog": sum(d.below10 for d in fleet),
        "devices_driven_below10_by_fog": len(data.driven10),
        "device_s_above55": sum(d.s_above55 for d in fleet),
        "device_s_above65": sum(d.s_above65 for d in fleet),
        "task_s_above65": sum(d.task_s_above65 for d in fleet),
        "throttle_events": sum(d.throttle_events for d in fleet),
        "deadline_tasks_by_priority": deadline_total,
        "deadline_missed_by_priority": deadline_missed,
        "deadline_missed": sum(deadline_missed.values()),
        "wait_p50_s": percentile(waits, 50),
        "wait_p95_s": percentile(waits, 95),
        "never_started": n - len(waits),
        "makespan_s": max(0.0, last_completion - first_arrival),
        "utilisation_of_eligible": busy_eligible / eligible if eligible else 0.0,
        "utilisation_of_hardware": busy / hardware if hardware else 0.0,
        # Means of the 15-minute samples taken while tasks were waiting that fitted nowhere:
        # busy ÷ the allowed cores that waiting work could legally use, and busy ÷ every
        # allowed core (docs/simulation.md, "Metrics").
        "utilisation_of_eligible_backlogged": _mean(data.backlogged_util),
        "utilisation_of_allowed_backlogged": _mean(data.backlogged_allowed_util),
        "backlogged_samples": len(data.backlogged_util),
        "offered_of_eligible": offered / eligible_ref if eligible_ref else 0.0,
        "fairness_jain": jain(utilisation),
        "placements": data.placements,
        "preemptions": data.preemptions,
        "lost_attempts": data.lost,
        "evictions": data.evicted,
        "cluster_reforms": data.clusters.reforms,
        "cluster_head_changes": data.clusters.head_changes,
        "clusters_max": data.clusters.max_clusters,
    }
    timing = {
        "policy_cpu_s": data.policy_cpu_s,
        "cpu_us_per_task_decision": 1e6 * data.policy_cpu_s / max(1, data.task_decisions),
        "cpu_us_per_placement": 1e6 * data.policy_cpu_s / max(1, data.placements),
        "rounds": float(data.rounds),
        "wall_s": data.wall_s,
    }
    return Metrics(data.policy, outcome, timing)
