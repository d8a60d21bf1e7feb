"""Lease and liveness rules: when a device counts as lost and when a lease has run out. Pure.

* A device is **lost** when its last heartbeat is older than ``missed_heartbeats`` ×
  ``heartbeat_interval`` (default 3 × 30 s, the seed's monitoring period).
* A **scheduled** lease that the device has not started within ``dispatch_timeout`` is taken back
  (outcome ``dispatch_timeout``): the device may never have received it.
* A **running** lease times out at ``started_at + estimated_duration × timeout_multiplier +
  timeout_grace`` (outcome ``timeout``). The grace keeps tiny tasks from timing out on a
  scheduling hiccup.

Every expiry requeues the task (its next placement gets attempt + 1, a new lease); the store
charges the attempt and fails the task once ``max_attempts`` are used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fogmesh.errors import ConfigError
from fogmesh.fog.tasks import Task, TaskState

__all__ = ["LeaseExpiry", "LifecycleConfig", "expired_leases", "lease_deadline", "stale_before"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleConfig:
    heartbeat_interval: float = 30.0
    missed_heartbeats: int = 3
    dispatch_timeout: float = 60.0
    timeout_multiplier: float = 3.0
    timeout_grace: float = 30.0

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval", "dispatch_timeout", "timeout_multiplier"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"must be a number > 0, not {value!r}", field=name)
        if not isinstance(self.timeout_grace, int | float) or self.timeout_grace < 0:
            raise ConfigError("must be a number ≥ 0", field="timeout_grace")
        if isinstance(self.missed_heartbeats, bool) or not (
            isinstance(self.missed_heartbeats, int) and self.missed_heartbeats >= 1
        ):
            raise ConfigError("must be an integer ≥ 1", field="missed_heartbeats")
        if self.timeout_multiplier < 1:
            raise ConfigError(
                "must be ≥ 1 (a task may take its estimate)", field="timeout_multiplier"
            )


@dataclass(frozen=True, slots=True)
class LeaseExpiry:
    task_id: str
    attempt: int
    device_id: str | None
    outcome: str  # dispatch_timeout | timeout
    reason: str


def stale_before(now: float, config: LifecycleConfig) -> float:
    """Devices whose last heartbeat is older than this are lost."""
    return now - config.heartbeat_interval * config.missed_heartbeats


def lease_deadline(task: Task, config: LifecycleConfig) -> float | None:
    """When the task's current lease runs out, or ``None`` if it holds no lease."""
    if task.state is TaskState.SCHEDULED and task.scheduled_at is not None:
        return task.scheduled_at + config.dispatch_timeout
    if task.state is TaskState.RUNNING:
        began = task.started_at if task.started_at is not None else task.scheduled_at
        if began is None:
            return None
        budget = task.resources.estimated_duration * config.timeout_multiplier
        return began + budget + config.timeout_grace
    return None


def expired_leases(tasks: Iterable[Task], now: float, config: LifecycleConfig) -> list[LeaseExpiry]:
    """The leases among ``tasks`` that have run out at ``now``, in the order given."""
    out: list[LeaseExpiry] = []
    for task in tasks:
        deadline = lease_deadline(task, config)
        if deadline is None or now < deadline:
            continue
        if task.state is TaskState.SCHEDULED:
            outcome = "dispatch_timeout"
            reason = f"not started within {config.dispatch_timeout:g} s of placement"
        else:
            outcome = "timeout"
            reason = (
                f"running longer than {task.resources.estimated_duration:g} s × "
                f"{config.timeout_multiplier:g} + {config.timeout_grace:g} s"
            )
        out.append(LeaseExpiry(task.id, task.attempt, task.assigned_device, outcome, reason))
    return out
