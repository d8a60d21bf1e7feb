"""The pure lease and liveness rules, with time from a ManualClock (no wall clock anywhere)."""

from __future__ import annotations

import math

import msgspec
import pytest

from fogmesh.clock import ManualClock
from fogmesh.errors import ConfigError
from fogmesh.fog.lifecycle import (
    COORDINATOR_RESTART,
    DISCONNECTED,
    OFFLINE,
    LifecycleConfig,
    expired_leases,
    lease_deadline,
    link_loss_outcome,
    links_given_up,
    lost_cutoff,
    lost_device_outcome,
)
from fogmesh.fog.tasks import AttemptRecord, Task, TaskResources, TaskState, TaskType
from fogmesh.store._rules import NOT_CHARGED

CFG = LifecycleConfig(
    heartbeat_interval=10.0,
    missed_heartbeats=3,  # lost after 30 s of silence
    dispatch_timeout=20.0,
    timeout_multiplier=2.0,
    timeout_grace=5.0,
    reconnect_grace=4.0,
    uncharged_link_losses=2,
)
T0 = 1_800_000_000.0


def _task(state: TaskState, *, scheduled_at: float, started_at: float | None = None) -> Task:
    return Task(
        id="t1",
        type=TaskType.INFERENCE,
        resources=TaskResources(estimated_duration=10.0),
        state=state,
        attempt=1,
        assigned_device="d1",
        scheduled_at=scheduled_at,
        started_at=started_at,
        created_at=scheduled_at,
    )


def _lost(attempt: int, outcome: str) -> AttemptRecord:
    return AttemptRecord(attempt=attempt, device_id="d1", placed_at=T0, outcome=outcome)


def test_no_device_is_lost_in_the_first_window_after_a_restart() -> None:
    clock = ManualClock(start=T0)
    started = clock.time()  # the coordinator (re)starts; devices last beat long before
    last_beat = T0 - 3600.0
    clock.advance(29.0)
    # 29 s after the start: a device silent for an hour is not lost yet (the coordinator was
    # down for most of that hour)
    assert not last_beat < lost_cutoff(clock.time(), CFG, started)
    assert lost_cutoff(clock.time(), CFG, started) == -math.inf
    clock.advance(1.5)  # 30.5 s of silence the coordinator was up to hear
    assert last_beat < lost_cutoff(clock.time(), CFG, started)
    # without a restart the rule is the plain window: 30 s of silence
    assert lost_cutoff(clock.time(), CFG) == clock.time() - 30.0


def test_a_device_silent_since_the_restart_loses_its_leases_uncharged() -> None:
    started = T0
    assert lost_device_outcome(T0 - 5.0, started)[0] == COORDINATOR_RESTART
    assert lost_device_outcome(T0 + 1.0, started)[0] == "lost"  # heard since: its own silence
    assert COORDINATOR_RESTART in NOT_CHARGED and "lost" not in NOT_CHARGED


def test_a_lease_from_before_the_restart_runs_out_no_sooner_than_a_window_after_it() -> None:
    clock = ManualClock(start=T0)
    scheduled = _task(TaskState.SCHEDULED, scheduled_at=T0)
    running = _task(TaskState.RUNNING, scheduled_at=T0, started_at=T0 + 1.0)
    # Untouched by a restart: dispatch 20 s; running 10 s × 2 + 5 s after its start
    assert lease_deadline(scheduled, CFG) == T0 + 20.0
    assert lease_deadline(running, CFG) == T0 + 1.0 + 25.0
    clock.advance(600.0)  # the coordinator was down for ten minutes and starts again
    started = clock.time()
    assert lease_deadline(scheduled, CFG, started) == started + 30.0
    assert lease_deadline(running, CFG, started) == started + 30.0
    clock.advance(29.0)
    assert expired_leases([scheduled, running], clock.time(), CFG, watching_since=started) == []
    clock.advance(1.0)
    expired = expired_leases([scheduled, running], clock.time(), CFG, watching_since=started)
    assert [e.outcome for e in expired] == ["dispatch_timeout", "timeout"]
    # a lease placed after the start keeps its own deadline
    fresh = _task(TaskState.SCHEDULED, scheduled_at=started + 1.0)
    assert lease_deadline(fresh, CFG, started) == started + 21.0


def test_a_lease_whose_result_waits_to_be_stored_does_not_run_out_while_it_is_sent() -> None:
    clock = ManualClock(start=T0)
    running = _task(TaskState.RUNNING, scheduled_at=T0, started_at=T0)
    clock.advance(1000.0)
    tried = clock.time() - 29.0  # the last try that could not be stored, 29 s ago
    assert expired_leases([running], clock.time(), CFG, results_waiting={"t1": (1, tried)}) == []
    # … only that attempt's
    assert len(expired_leases([running], clock.time(), CFG, results_waiting={"t1": (0, tried)}))
    # … and not for ever: a liveness window (30 s) without a try ends it
    clock.advance(1.0)
    assert len(expired_leases([running], clock.time(), CFG, results_waiting={"t1": (1, tried)}))


def test_leases_of_a_closed_link_wait_the_reconnect_grace() -> None:
    clock = ManualClock(start=T0)
    closed = {"d1": clock.time(), "d2": clock.time() + 2.0}
    clock.advance(3.9)
    assert links_given_up(closed, clock.time(), CFG) == []
    clock.advance(0.1)  # 4 s: d1's grace is over, d2 has 2 s left
    assert links_given_up(closed, clock.time(), CFG) == ["d1"]
    clock.advance(2.0)
    assert links_given_up(closed, clock.time(), CFG) == ["d1", "d2"]


def test_link_losses_are_free_only_so_many_times_per_task() -> None:
    task = _task(TaskState.RUNNING, scheduled_at=T0)
    assert link_loss_outcome(task, DISCONNECTED, CFG) == DISCONNECTED
    once = msgspec.structs.replace(task, history=(_lost(1, DISCONNECTED),))
    assert link_loss_outcome(once, OFFLINE, CFG) == OFFLINE
    twice = msgspec.structs.replace(
        task,
        history=(_lost(1, DISCONNECTED), _lost(2, OFFLINE)),
    )
    # a task that took two agents down with it is charged from the third on
    assert link_loss_outcome(twice, DISCONNECTED, CFG) == "lost"
    assert {DISCONNECTED, OFFLINE} <= NOT_CHARGED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reconnect_grace", -1.0),
        ("reconnect_grace", True),
        ("uncharged_link_losses", -1),
        ("uncharged_link_losses", 1.5),
    ],
)
def test_bad_lifecycle_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        LifecycleConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field


def test_the_inlined_expiry_pass_agrees_with_lease_deadline() -> None:
    # expired_leases inlines lease_deadline for speed (it runs over every lease every round):
    # the two must say the same for every state, start and coordinator restart.
    starts = (T0 - 100.0, T0 - 30.0, T0 - 5.0, T0)
    states = (TaskState.SCHEDULED, TaskState.RUNNING, TaskState.PENDING)
    shapes = [(s, b, o) for s in states for b in starts for o in (None, 1.0)]
    tasks = [
        msgspec.structs.replace(
            _task(state, scheduled_at=begun, started_at=None if off is None else begun + off),
            id=f"t{i}",
        )
        for i, (state, begun, off) in enumerate(shapes)
    ]
    for watching_since in (-math.inf, T0 - 50.0, T0 - 10.0):
        for now in (T0 - 20.0, T0, T0 + 10.0, T0 + 25.0, T0 + 40.0):
            plain = [
                t.id
                for t in tasks
                if (d := lease_deadline(t, CFG, watching_since)) is not None and now >= d
            ]
            inlined = expired_leases(tasks, now, CFG, watching_since=watching_since)
            assert [e.task_id for e in inlined] == plain, (watching_since, now)
