"""Workload generator: task arrivals with a day/night pattern and a mix of types and sizes.

Arrivals are a non-homogeneous Poisson process, ``λ(t) = λ̄ (1 + a cos(2π (t − 14 h) / 24 h))``
(peak mid-afternoon, trough at 02:00), drawn by thinning from one seeded ``random.Random``. The
mean rate ``λ̄`` is set so the offered work — cores × reference-speed seconds — is ``load`` times
the fleet's capacity in reference cores. Each task draws its type from the mix below, a
priority from its type's weights, a log-normal duration around its type's mean, and (for a
share of tasks) a deadline ``slack × duration`` after arrival.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from fogmesh.fog.tasks import (
    TERMINAL_STATES,
    Task,
    TaskPriority,
    TaskResources,
    TaskState,
    TaskType,
)
from fogmesh.sim.scenario import Scenario

__all__ = [
    "TASK_MIX",
    "SimTask",
    "TaskKind",
    "TaskSpec",
    "generate_tasks",
    "mean_core_seconds",
]


@dataclass(frozen=True, slots=True)
class TaskKind:
    type: TaskType
    share: float
    cores: float
    memory_mb: int
    duration_factor: float  # × the scenario's mean task length, before normalisation
    priorities: tuple[tuple[TaskPriority, float], ...]


P = TaskPriority
# An assumed mix for a household/office fog: many short inferences, fewer long training steps.
TASK_MIX: Final[tuple[TaskKind, ...]] = (
    TaskKind(
        TaskType.INFERENCE,
        0.35,
        1.0,
        512,
        0.25,
        ((P.CRITICAL, 0.1), (P.HIGH, 0.4), (P.NORMAL, 0.5)),
    ),
    TaskKind(
        TaskType.EMBEDDING, 0.25, 2.0, 1024, 0.75, ((P.HIGH, 0.2), (P.NORMAL, 0.6), (P.LOW, 0.2))
    ),
    TaskKind(TaskType.PREPROCESSING, 0.15, 1.0, 256, 0.5, ((P.NORMAL, 0.5), (P.LOW, 0.5))),
    TaskKind(TaskType.TRAINING, 0.15, 4.0, 2048, 3.0, ((P.NORMAL, 0.5), (P.LOW, 0.5))),
    TaskKind(TaskType.VALIDATION, 0.05, 2.0, 512, 0.5, ((P.HIGH, 0.3), (P.NORMAL, 0.7))),
    TaskKind(TaskType.OPTIMIZATION, 0.05, 2.0, 1024, 1.0, ((P.NORMAL, 0.6), (P.LOW, 0.4))),
)
_SIGMA: Final = 0.5  # log-normal spread of durations
_PEAK_HOUR: Final = 14.0


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task as generated: ``duration_s`` is at reference speed (1.0 = a 2 GHz core)."""

    id: str
    arrival: float
    type: TaskType
    priority: TaskPriority
    cores: float
    memory_mb: int
    duration_s: float
    deadline: float | None


def _duration_scale(scenario: Scenario) -> float:
    mean_factor = sum(k.share * k.duration_factor for k in TASK_MIX) / sum(
        k.share for k in TASK_MIX
    )
    return scenario.mean_task_s / mean_factor


def mean_core_seconds(scenario: Scenario) -> float:
    """Expected reference core-seconds of one task."""
    scale = _duration_scale(scenario)
    total = sum(k.share for k in TASK_MIX)
    return sum(k.share * k.cores * k.duration_factor * scale for k in TASK_MIX) / total


def generate_tasks(
    scenario: Scenario, capacity_ref_cores: float, rng: random.Random
) -> list[TaskSpec]:
    """All arrivals of the run, in time order. Pure given the ``rng`` state."""
    mean_rate = scenario.load * capacity_ref_cores / mean_core_seconds(scenario)
    amp = scenario.diurnal_amplitude
    peak_rate = mean_rate * (1.0 + amp)
    if peak_rate <= 0:
        return []
    scale = _duration_scale(scenario)
    kinds = list(TASK_MIX)
    # Cumulative weights, as ``choices`` would build them from the weights on every call.
    kind_cum = list(accumulate(k.share for k in kinds))
    prio_tables = {
        k: ([p for p, _ in k.priorities], list(accumulate(w for _, w in k.priorities)))
        for k in kinds
    }
    mu_shift = -_SIGMA * _SIGMA / 2.0  # so the log-normal's mean is exactly its nominal mean
    out: list[TaskSpec] = []
    t = 0.0
    end = scenario.duration_s
    while True:
        t += rng.expovariate(peak_rate)
        if t >= end:
            break
        phase = 2.0 * math.pi * (t / 3600.0 - _PEAK_HOUR) / 24.0
        if rng.random() * (1.0 + amp) > 1.0 + amp * math.cos(phase):
            continue
        kind = rng.choices(kinds, cum_weights=kind_cum)[0]
        prios, prio_cum = prio_tables[kind]
        priority = rng.choices(prios, cum_weights=prio_cum)[0]
        duration = kind.duration_factor * scale * math.exp(rng.gauss(mu_shift, _SIGMA))
        deadline = None
        if rng.random() < scenario.deadline_share:
            deadline = t + scenario.deadline_slack * duration
        out.append(
            TaskSpec(
                id=f"t{len(out):07d}",
                arrival=t,
                type=kind.type,
                priority=priority,
                cores=kind.cores,
                memory_mb=kind.memory_mb,
                duration_s=duration,
                deadline=deadline,
            )
        )
    return out


class SimTask:
    """A task's life in the run: the generated spec, the fog ``Task`` the scheduler sees, and
    what happened to it. Ends in exactly one terminal state (completed, failed or cancelled)."""

    __slots__ = (
        "attempt",
        "device",
        "end_reason",
        "end_time",
        "first_start",
        "remaining",
        "sched_rate",
        "spec",
        "start",
        "state",
        "task",
        "version",
    )

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.task = Task(
            id=spec.id,
            type=spec.type,
            priority=spec.priority,
            resources=TaskResources(
                cpu_cores=spec.cores, memory_mb=spec.memory_mb, estimated_duration=spec.duration_s
            ),
            deadline=spec.deadline,
            created_at=spec.arrival,
        )
        self.state = TaskState.PENDING
        self.attempt = 0
        self.device = -1
        self.first_start: float | None = None
        self.start = 0.0
        self.end_time: float | None = None
        self.end_reason = ""
        self.remaining = spec.duration_s  # reference-seconds of work left in this attempt
        self.version = 0  # bumps whenever the completion time is recomputed
        self.sched_rate = -1.0  # the rate its pending completion event assumed (-1: none)

    @property
    def id(self) -> str:
        return self.spec.id

    def finish(self, state: TaskState, now: float, reason: str) -> None:
        if self.state in TERMINAL_STATES:
            raise RuntimeError(f"task {self.id} ended twice ({self.state} then {state})")
        self.state = state
        self.end_time = now
        self.end_reason = reason
        self.device = -1
