"""The ``Store`` seam: the coordinator's durable state, and the record types it hands back.

Every implementation (``MemoryStore``, ``SqlStore`` on SQLite or PostgreSQL) passes the one
contract suite in ``tests/store``. The rules that matter:

* ``add_task``/``add_tasks`` return only once the tasks are durable (for ``SqlStore``: committed).
* Every task transition is a compare-and-set on (state, attempt[, device]); when it does not
  apply, the error says why (``TaskNotFound``, ``StaleAttempt``, ``IllegalTransition``) and
  nothing changed.
* A result or status is accepted only from the current lease (device, attempt): fencing.
* Time is passed in (``now``); a store never reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import msgspec

from fogmesh.devices.model import (
    Accepts,
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
    PlatformThermal,
)
from fogmesh.errors import FogmeshError, StoreError
from fogmesh.fog.tasks import Task, TaskState

__all__ = [
    "ClusterRecord",
    "DeviceRecord",
    "DeviceStatus",
    "PendingOrder",
    "Placement",
    "StatesArg",
    "Store",
    "SubmitKey",
    "profile_from_dict",
]

PendingOrder = Literal["priority", "age"]
StatesArg = TaskState | Sequence[TaskState] | None


class Placement(NamedTuple):
    """One line of a scheduler's plan, for ``Store.place_many``."""

    task_id: str
    device_id: str
    expected_attempt: int


class SubmitKey(NamedTuple):
    """A client's idempotency key for one task of a submit, for ``Store.add_keyed_tasks``."""

    key: str  # chosen by the client, 1–256 characters
    expires_at: float  # epoch seconds; the key is forgotten afterwards


class DeviceStatus(StrEnum):
    READY = "ready"  # takes new work
    DRAINING = "draining"  # finishes its leases, takes nothing new (operator's choice)
    LOST = "lost"  # missed heartbeats; its leases are to be requeued
    OFFLINE = "offline"  # said goodbye


class DeviceRecord(msgspec.Struct, frozen=True, kw_only=True):
    device_id: str
    device_type: DeviceType
    status: DeviceStatus
    profile: dict[str, Any]  # DeviceProfile.to_dict() of the latest report
    labels: dict[str, str] = msgspec.field(default_factory=dict)  # e.g. {"site": "home"}
    models: tuple[str, ...] = ()  # deployed model ids, sorted
    registered_at: float
    last_heartbeat: float  # registration counts as one

    def device_profile(self) -> DeviceProfile:
        """The stored profile as a typed ``DeviceProfile``."""
        return profile_from_dict(self.profile)


class ClusterRecord(msgspec.Struct, frozen=True, kw_only=True):
    cluster_id: str
    members: tuple[str, ...]
    head: str | None = None
    term: int = 0  # election term; one head per (cluster, term), terms never go back


def profile_from_dict(data: Mapping[str, Any]) -> DeviceProfile:
    """Rebuild a ``DeviceProfile`` from its ``to_dict()`` form; unknown keys are ignored so a
    profile written by a newer version still loads."""
    try:
        caps_in = dict(data.get("capabilities") or {})
        caps_fields = DeviceCapabilities.__dataclass_fields__
        caps = {k: v for k, v in caps_in.items() if k in caps_fields}
        caps["supported_transports"] = tuple(caps.get("supported_transports") or ())
        fields = DeviceProfile.__dataclass_fields__
        values = {k: v for k, v in data.items() if k in fields}
        values["device_type"] = DeviceType(values["device_type"])
        values["capabilities"] = DeviceCapabilities(**caps)
        if values.get("network_type") is not None:
            values["network_type"] = NetworkType(values["network_type"])
        thermal = values.get("platform_thermal")
        if thermal is not None:
            values["platform_thermal"] = PlatformThermal(thermal["platform"], thermal["status"])
        accepts = values.get("accepts")
        if accepts is not None:
            values["accepts"] = Accepts.from_dict(accepts)
        return DeviceProfile(**values)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"stored device profile is unreadable: {exc}") from exc


@runtime_checkable
class Store(Protocol):
    """Durable coordinator state. All methods are coroutines; ``now`` is epoch seconds."""

    # -- tasks: submit and read -------------------------------------------------------------
    async def add_task(self, task: Task) -> None:
        """Store a new PENDING task; durable when this returns. Bad task → ``InvalidRequest``
        (also for a duplicate id), nothing stored."""
        ...

    async def add_tasks(self, tasks: Sequence[Task]) -> None:
        """Store many new tasks in one transaction: all or none."""
        ...

    async def add_keyed_tasks(
        self, tasks: Sequence[Task], keys: Sequence[SubmitKey | None], now: float
    ) -> list[str]:
        """``add_tasks`` where ``keys[i]`` (or ``None``) is the idempotency key of ``tasks[i]``.

        A task whose key is already held (not expired by ``now``) is not stored again: its
        place in the answer is the id of the task stored under that key. The others are stored
        in one transaction, all or none, with their keys; the answer is one id per task, in
        order. A held key given with a task whose spec differs from the held task's (``_rules.
        same_spec``) → ``IdempotencyConflict``, the same key twice
        in one call → ``InvalidRequest``; nothing stored either way. Expired keys are forgotten.
        """
        ...

    async def get_task(self, task_id: str) -> Task:
        """The task with its attempt history; unknown → ``TaskNotFound``."""
        ...

    async def list_tasks(
        self, states: StatesArg = None, *, limit: int = 100, after: str | None = None
    ) -> list[Task]:
        """Tasks in id (= creation) order, optionally only those in ``states``; ``after`` is
        the last id of the previous page."""
        ...

    async def pending_tasks(
        self, limit: int | None = None, *, order: PendingOrder = "priority"
    ) -> list[Task]:
        """PENDING tasks: ``priority`` = highest priority first, then oldest; ``age`` = oldest
        first whatever the priority (what an aging rule needs)."""
        ...

    async def leased_tasks(self, device_id: str | None = None) -> list[Task]:
        """SCHEDULED or RUNNING tasks (of one device, or all), oldest placement first."""
        ...

    async def count_by_state(self) -> dict[TaskState, int]:
        """How many tasks are in each state; every state is a key."""
        ...

    # -- tasks: transitions (compare-and-set) -----------------------------------------------
    async def place(self, task_id: str, device_id: str, expected_attempt: int, now: float) -> Task:
        """PENDING → SCHEDULED on ``device_id`` with ``attempt = expected_attempt + 1`` (the new
        lease). Another placement got there first → ``StaleAttempt``."""
        ...

    async def place_many(
        self, placements: Sequence[Placement], now: float
    ) -> list[Task | FogmeshError]:
        """``place`` for a whole plan in one transaction; one outcome per placement, in order:
        the placed task, or the error ``place`` would have raised (as a value; the other
        placements still happen). Bad input (an invalid device id) raises before anything."""
        ...

    async def mark_running(self, task_id: str, device_id: str, attempt: int, now: float) -> Task:
        """SCHEDULED → RUNNING, only from the current lease."""
        ...

    async def complete(
        self, task_id: str, device_id: str, attempt: int, result: Any, now: float
    ) -> Task:
        """→ COMPLETED with ``result`` (JSON value), only from the current lease; exactly once."""
        ...

    async def fail(
        self, task_id: str, device_id: str, attempt: int, error: Mapping[str, Any], now: float
    ) -> Task:
        """→ FAILED with ``error`` (``{"code", "reason"}``), only from the current lease."""
        ...

    async def requeue(
        self, task_id: str, attempt: int, outcome: str, reason: str, now: float
    ) -> Task:
        """End lease ``attempt`` (outcome e.g. lost/timeout/refused/preempted) and return the task
        to PENDING; FAILED (code ``max_attempts``) once ``max_attempts`` charged attempts are
        used. A ``preempted``, ``refused``, ``not_accepted``, ``disconnected``, ``offline`` or
        ``coordinator_restart`` or ``removed`` attempt (``NOT_CHARGED``: not the task's fault) is
        not charged."""
        ...

    async def cancel(self, task_id: str, now: float, reason: str = "cancelled") -> Task:
        """→ CANCELLED from any non-terminal state; the returned task still names the device
        that held the lease, so it can be told to stop."""
        ...

    async def fail_expired(self, now: float) -> list[str]:
        """PENDING tasks whose deadline is ≤ ``now`` → FAILED (code and reason ``deadline``);
        returns their ids."""
        ...

    # -- devices ----------------------------------------------------------------------------
    async def upsert_device(
        self, profile: DeviceProfile, now: float, *, labels: Mapping[str, str] | None = None
    ) -> DeviceRecord:
        """Register or re-register a device. A new, lost or offline device becomes READY; a
        DRAINING one stays draining. ``labels=None`` keeps the stored labels."""
        ...

    async def heartbeat(
        self, device_id: str, now: float, profile: DeviceProfile | None = None
    ) -> DeviceRecord:
        """Record a heartbeat (and the new profile); a lost or offline device comes back READY."""
        ...

    async def note_heartbeat(
        self, device_id: str, now: float, profile: DeviceProfile | None = None
    ) -> None:
        """``heartbeat`` for a caller that keeps the device in memory and needs no record back
        (the coordinator's write-behind): the SQL store then skips reading the row again."""
        ...

    async def set_device_status(self, device_id: str, status: DeviceStatus) -> DeviceRecord: ...

    async def mark_lost(self, stale_before: float) -> list[str]:
        """READY or DRAINING devices whose last heartbeat is older than ``stale_before`` → LOST;
        returns their ids (the caller requeues their ``leased_tasks``)."""
        ...

    async def get_device(self, device_id: str) -> DeviceRecord:
        """Unknown → ``DeviceNotFound``."""
        ...

    async def list_devices(self, status: DeviceStatus | None = None) -> list[DeviceRecord]:
        """Devices in id order, with their deployed models."""
        ...

    async def remove_device(self, device_id: str) -> None:
        """Forget a device and its deployed models (its tasks keep their history)."""
        ...

    async def add_model(self, device_id: str, model_id: str, now: float) -> None: ...

    async def remove_model(self, device_id: str, model_id: str) -> None: ...

    # -- clusters and coordinator state ----------------------------------------------------
    async def save_clusters(self, clusters: Sequence[ClusterRecord], now: float) -> None:
        """Replace the cluster assignment. A cluster whose term goes back, or that names a
        different head in the same term, → ``StaleAttempt`` and nothing changed."""
        ...

    async def load_clusters(self) -> list[ClusterRecord]: ...

    async def spend_tickets(
        self,
        spent: Mapping[str, float],
        now: float,
        *,
        holders: Mapping[str, str] | None = None,
    ) -> None:
        """Record one-shot ticket ids as spent until their expiry (epoch seconds); durable when
        this returns. Ids that expired before ``now`` are forgotten. Concurrent calls may share
        one commit. ``holders`` names, for some of these ids, who spent them (a device id); an
        id spent before keeps its first holder. A bad id (not 1–256 characters), expiry or
        holder (not 1–128 characters, or for an id not in ``spent``) → ``InvalidRequest``,
        nothing stored."""
        ...

    async def ticket_holders(self, now: float) -> dict[str, str]:
        """Who spent the one-shot tickets that have a holder and have not expired by ``now``."""
        ...

    async def spent_tickets(self, now: float) -> dict[str, float]:
        """The spent one-shot ticket ids that have not expired by ``now``, with their expiry."""
        ...

    async def get_value(self, key: str) -> Any:
        """A coordinator state value (JSON), or ``None``."""
        ...

    async def set_value(self, key: str, value: Any) -> None: ...

    async def close(self) -> None:
        """Flush pending submits and release connections; the store is unusable afterwards."""
        ...
