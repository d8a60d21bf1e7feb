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

Losses the task did not cause are not charged (``UNCHARGED_LOSSES``):

* **The coordinator's own outage.** Liveness and leases are measured from the coordinator's
  (re)start as well as from the stored times (``watching_since``): after a restart every device
  has a whole liveness window to reconnect before it counts as lost, and a lease that began
  before the restart runs out no sooner than that window after it. A device never heard from
  since the restart and lost at the end of that window loses its leases as
  ``coordinator_restart``: the coordinator cannot tell its silence from its own downtime.
* **A closed link.** A device whose agent link closed takes no new work at once; its leases wait
  ``reconnect_grace`` seconds for the agent to come back holding them (a network blip must not
  throw running work away), then go back to the queue as ``disconnected``. An agent that
  comes back without a lease it held (it restarted) gives it up the same way. So that a task
  that kills its agent cannot go round the fleet for ever, a task's link losses are free only
  ``uncharged_link_losses`` times; later ones are charged (``lost``).
* **A result that could not be stored.** A lease whose result reached the coordinator but could
  not be written (the store failed) does not run out while the agent keeps sending it again
  (at least once a heartbeat interval; a liveness window without a try ends the exemption).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from fogmesh.errors import ConfigError
from fogmesh.fog.tasks import Task, TaskState

__all__ = [
    "COORDINATOR_RESTART",
    "DISCONNECTED",
    "LINK_LOSSES",
    "OFFLINE",
    "UNCHARGED_LOSSES",
    "LeaseExpiry",
    "LifecycleConfig",
    "expired_leases",
    "lease_deadline",
    "link_loss_outcome",
    "links_given_up",
    "lost_cutoff",
    "lost_device_outcome",
    "stale_before",
]

# Outcomes of a lease that ended through no fault of the task (the store does not charge them).
DISCONNECTED: Final = "disconnected"  # the device's link closed and did not come back in time
OFFLINE: Final = "offline"  # the agent said goodbye while still holding the lease
COORDINATOR_RESTART: Final = "coordinator_restart"  # silent since the coordinator's restart
LINK_LOSSES: Final = frozenset({DISCONNECTED, OFFLINE})
UNCHARGED_LOSSES: Final = LINK_LOSSES | {COORDINATOR_RESTART}


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleConfig:
    heartbeat_interval: float = 30.0
    missed_heartbeats: int = 3
    dispatch_timeout: float = 60.0
    timeout_multiplier: float = 3.0
    timeout_grace: float = 30.0
    # How long a device's leases wait for its agent to reconnect after the link closed.
    reconnect_grace: float = 10.0
    uncharged_link_losses: int = 3  # per task; later link losses are charged

    @property
    def liveness_window(self) -> float:
        """Silence after which a device is lost."""
        return self.heartbeat_interval * self.missed_heartbeats

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval", "dispatch_timeout", "timeout_multiplier"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"must be a number > 0, not {value!r}", field=name)
        for name in ("timeout_grace", "reconnect_grace"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError("must be a number ≥ 0", field=name)
        if isinstance(self.uncharged_link_losses, bool) or not (
            isinstance(self.uncharged_link_losses, int) and self.uncharged_link_losses >= 0
        ):
            raise ConfigError("must be an integer ≥ 0", field="uncharged_link_losses")
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
    return now - config.liveness_window


def lost_cutoff(now: float, config: LifecycleConfig, watching_since: float = -math.inf) -> float:
    """Devices whose last heartbeat is older than this are lost, the coordinator having watched
    since ``watching_since`` (its start): a device is lost only after a whole liveness window
    of silence that the coordinator was up to hear, so none is in the first window after a
    restart (``-inf``: nobody is lost yet)."""
    cutoff = stale_before(now, config)
    return cutoff if watching_since < cutoff else -math.inf


def lost_device_outcome(last_heartbeat: float, watching_since: float) -> tuple[str, str]:
    """Outcome and reason for the leases of a device found lost: not charged if the device was
    not heard from since the coordinator (re)started (its silence may be the coordinator's own
    downtime)."""
    if last_heartbeat < watching_since:
        return COORDINATOR_RESTART, "device did not come back after the coordinator restarted"
    return "lost", "device missed its heartbeats"


def lease_deadline(
    task: Task, config: LifecycleConfig, watching_since: float = -math.inf
) -> float | None:
    """When the task's current lease runs out, or ``None`` if it holds no lease. A lease that
    began before ``watching_since`` (the coordinator's start) runs out no sooner than one
    liveness window after it: its device may still be on its way back with the result."""
    if task.state is TaskState.SCHEDULED and task.scheduled_at is not None:
        began: float | None = task.scheduled_at
        deadline = task.scheduled_at + config.dispatch_timeout
    elif task.state is TaskState.RUNNING:
        began = task.started_at if task.started_at is not None else task.scheduled_at
        if began is None:
            return None
        budget = task.resources.estimated_duration * config.timeout_multiplier
        deadline = began + budget + config.timeout_grace
    else:
        return None
    if began is not None and began < watching_since:
        return max(deadline, watching_since + config.liveness_window)
    return deadline


def expired_leases(
    tasks: Iterable[Task],
    now: float,
    config: LifecycleConfig,
    *,
    watching_since: float = -math.inf,
    results_waiting: Mapping[str, tuple[int, float]] | None = None,
) -> list[LeaseExpiry]:
    """The leases among ``tasks`` that have run out at ``now``, in the order given.

    ``results_waiting`` maps task ids to (attempt, when) of a result that reached the
    coordinator but could not be stored: that lease does not run out while the device keeps
    sending it — until a liveness window passes without a try (an agent too old to send it
    again, say)."""
    out: list[LeaseExpiry] = []
    # lease_deadline inlined: this runs over every lease in every scheduling round.
    dispatch, grace = config.dispatch_timeout, config.timeout_grace
    multiplier = config.timeout_multiplier
    window = config.liveness_window
    floor = watching_since + window
    scheduled, running = TaskState.SCHEDULED, TaskState.RUNNING
    for task in tasks:
        state = task.state
        if state is scheduled:
            began = task.scheduled_at
            if began is None or now < began + dispatch:
                continue
        elif state is running:
            began = task.started_at if task.started_at is not None else task.scheduled_at
            if began is None:
                continue
            if now < began + task.resources.estimated_duration * multiplier + grace:
                continue
        else:
            continue
        if began < watching_since and now < floor:
            continue  # began before the coordinator's start: a liveness window after it
        if results_waiting:
            waiting = results_waiting.get(task.id)
            if waiting is not None and waiting[0] == task.attempt and now < waiting[1] + window:
                continue
        if state is scheduled:
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


def links_given_up(
    closed_at: Mapping[str, float], now: float, config: LifecycleConfig
) -> list[str]:
    """Devices (of ``closed_at``: device → when its link closed) whose agent did not reconnect
    within ``reconnect_grace``: their leases go back to the queue."""
    limit = now - config.reconnect_grace
    return [device for device, when in closed_at.items() if when <= limit]


def link_loss_outcome(task: Task, outcome: str, config: LifecycleConfig) -> str:
    """The outcome to record for ``task``'s lease lost with its link (``outcome``, one of
    ``LINK_LOSSES``): itself while the task has lost fewer than ``uncharged_link_losses``
    leases that way, else ``lost`` (charged) — a task that kills every agent it runs on must
    not go round the fleet for ever."""
    earlier = sum(1 for h in task.history if h.outcome in LINK_LOSSES)
    return outcome if earlier < config.uncharged_link_losses else "lost"
