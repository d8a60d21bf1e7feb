"""What ``place()`` returns: a ``Plan`` whose every entry says why (DESIGN.md §5).

* ``Placement`` — the chosen device with its score broken down per scorer (weight, value, the
  arithmetic), the runners-up, and the closest rejected devices with their ``not_now``/``never``
  reason, so "why there, why not there" has an answer.
* ``Unplaced`` — counts per rejection reason over the whole fleet, e.g.
  ``12 never: requires_gpu (…); 3 not_now: battery_floor (battery 8% < floor 20%, …)``.
* ``Failure`` — a task the plan fails (``deadline``).
* ``Preemption`` — a running task to requeue (never dropped) to make room for CRITICAL work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fogmesh.fog.scheduler.base import VerdictKind
from fogmesh.fog.tasks import TaskPriority

__all__ = [
    "Candidate",
    "Failure",
    "Placement",
    "Plan",
    "PlanStats",
    "Preemption",
    "ReasonCount",
    "Rejection",
    "ScorePart",
    "Unplaced",
    "summarise",
    "summary_text",
]


@dataclass(frozen=True, slots=True)
class ScorePart:
    name: str
    weight: float
    value: float  # in [0, 1]
    reason: str


@dataclass(frozen=True, slots=True)
class Candidate:
    device_id: str
    score: float


@dataclass(frozen=True, slots=True)
class Rejection:
    device_id: str
    kind: VerdictKind
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class ReasonCount:
    kind: VerdictKind
    code: str
    count: int
    example: str


@dataclass(frozen=True, slots=True)
class Placement:
    task_id: str
    device_id: str
    priority: TaskPriority
    cpu_cores: float
    memory_mb: int
    effective_priority: float
    score: float  # Σ weight × value / Σ weight, in [0, 1]
    breakdown: tuple[ScorePart, ...]
    runners_up: tuple[Candidate, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    preempts: tuple[str, ...] = ()  # task ids evicted to make room (see Plan.preempted)
    evaluated: int = 0  # devices the decision looked at
    full_scan: bool = False
    duration_s: float = 0.0  # the task's estimated run time, carried into the reservation

    def explain(self) -> str:
        lines = [f"task {self.task_id} → {self.device_id} (score {self.score:.3f})"]
        lines += [f"  {p.name:<9} {p.value:.3f} × {p.weight:g}  {p.reason}" for p in self.breakdown]
        if self.preempts:
            lines.append(f"  preempts {', '.join(self.preempts)}")
        lines += [f"  runner-up {c.device_id} score {c.score:.3f}" for c in self.runners_up]
        lines += [f"  not {r.device_id}: {r.kind.value} {r.text}" for r in self.rejected]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Unplaced:
    task_id: str
    effective_priority: float
    summary: str
    counts: tuple[ReasonCount, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    evaluated: int = 0

    def explain(self) -> str:
        return f"task {self.task_id} not placed: {self.summary}"


@dataclass(frozen=True, slots=True)
class Failure:
    task_id: str
    reason: str  # machine-readable: "deadline"
    text: str


@dataclass(frozen=True, slots=True)
class Preemption:
    task_id: str  # the evicted task: requeue it (attempt + 1), do not drop it
    device_id: str
    priority: TaskPriority
    by_task_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlanStats:
    seed: int
    evaluated: int = 0  # filter runs over all decisions
    full_scans: int = 0
    cached_failures: int = 0  # tasks found unplaceable by an earlier, smaller task's scan


@dataclass(frozen=True, slots=True)
class Plan:
    placements: tuple[Placement, ...] = ()
    unplaced: tuple[Unplaced, ...] = ()
    failed: tuple[Failure, ...] = ()
    preempted: tuple[Preemption, ...] = ()
    stats: PlanStats = field(default_factory=lambda: PlanStats(seed=0))

    def for_task(self, task_id: str) -> Placement | Unplaced | Failure | None:
        for group in (self.placements, self.unplaced, self.failed):
            for entry in group:
                if entry.task_id == task_id:
                    return entry
        return None

    def placed_on(self) -> dict[str, str]:
        return {p.task_id: p.device_id for p in self.placements}


def summarise(
    counts: dict[tuple[VerdictKind, str], int], examples: dict[tuple[VerdictKind, str], str]
) -> tuple[ReasonCount, ...]:
    """Counts per (kind, code) with one example text each, most frequent first."""
    rows = [ReasonCount(kind, code, n, examples[kind, code]) for (kind, code), n in counts.items()]
    rows.sort(key=lambda r: (-r.count, r.kind.value, r.code))
    return tuple(rows)


def summary_text(rows: tuple[ReasonCount, ...], limit: int = 6) -> str:
    """``12 never: requires_gpu (task needs a GPU; device has none); 3 not_now: …``"""
    if not rows:
        return "no devices in the fleet"
    parts = [f"{r.count} {r.kind.value}: {r.code} ({r.example})" for r in rows[:limit]]
    if len(rows) > limit:
        parts.append(f"{sum(r.count for r in rows[limit:])} other")
    return "; ".join(parts)
