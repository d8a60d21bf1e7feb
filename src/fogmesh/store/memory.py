"""``MemoryStore``: the contract in plain dicts, for tests and the simulator.

Nothing survives the process. Each method runs without awaiting in between, so on one event
loop every call is atomic; the checks are written exactly as the SQL store's ``WHERE`` clauses
so both raise the same errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from fogmesh.devices.model import DeviceProfile
from fogmesh.errors import (
    DeviceNotFound,
    FogmeshError,
    InvalidRequest,
    NotFound,
    SchedulingError,
    StoreError,
    TaskNotFound,
)
from fogmesh.fog.tasks import AttemptRecord, Task, TaskState

from . import _rules as R
from .base import (
    ClusterRecord,
    DeviceRecord,
    DeviceStatus,
    PendingOrder,
    Placement,
    StatesArg,
    SubmitKey,
)

__all__ = ["MemoryStore"]

_replace = msgspec.structs.replace


class MemoryStore:
    """In-memory ``Store``."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._devices: dict[str, DeviceRecord] = {}
        self._clusters: dict[str, ClusterRecord] = {}
        self._kv: dict[str, Any] = {}
        self._spent: dict[str, float] = {}  # spent one-shot ticket id → expiry
        self._spent_min = math.inf  # the earliest expiry in _spent
        self._holders: dict[str, str] = {}  # spent ticket id → the device that spent it
        self._keys: dict[str, SubmitKey] = {}  # idempotency key → its entry
        self._key_tasks: dict[str, str] = {}  # idempotency key → the task stored under it
        self._keys_min = math.inf  # the earliest expiry in _keys
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore(tasks={len(self._tasks)}, devices={len(self._devices)})"

    def _open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    # -- tasks: submit and read -------------------------------------------------------------
    async def add_task(self, task: Task) -> None:
        await self.add_tasks([task])

    async def add_tasks(self, tasks: Sequence[Task]) -> None:
        self._open()
        tasks = list(tasks)
        R.check_new_tasks(tasks)
        for task in tasks:
            if task.id in self._tasks:
                raise InvalidRequest(f"task id {task.id} already exists", field="id")
        for task in tasks:
            # Through JSON and back, so values compare equal to what a SQL store returns.
            self._tasks[task.id] = msgspec.json.decode(msgspec.json.encode(task), type=Task)

    async def add_keyed_tasks(
        self, tasks: Sequence[Task], keys: Sequence[SubmitKey | None], now: float
    ) -> list[str]:
        self._open()
        tasks = list(tasks)
        R.check_new_tasks(tasks)
        checked = R.check_submit_keys(tasks, keys)
        if now > self._keys_min:  # something expired: forget it (rare, so O(keys) is fine)
            self._keys = {k: v for k, v in self._keys.items() if v.expires_at >= now}
            self._key_tasks = {k: v for k, v in self._key_tasks.items() if k in self._keys}
            self._keys_min = min((v.expires_at for v in self._keys.values()), default=math.inf)
        ids: list[str] = []
        new: list[tuple[Task, SubmitKey | None]] = []
        for task, key in zip(tasks, checked, strict=True):
            held = None if key is None else self._keys.get(key.key)
            if key is not None and held is not None:
                held_id = self._key_tasks[key.key]
                if not R.same_spec(self._tasks[held_id], task):
                    raise R.key_conflict(key.key, held_id)
                ids.append(held_id)
                continue
            ids.append(task.id)
            new.append((task, key))
        await self.add_tasks([t for t, _ in new])  # all or none; no await before this point
        for task, key in new:
            if key is not None:
                self._keys[key.key] = key
                self._key_tasks[key.key] = task.id
                self._keys_min = min(self._keys_min, key.expires_at)
        return ids

    def _get(self, task_id: str) -> Task:
        self._open()
        try:
            return self._tasks[task_id]
        except KeyError:
            raise TaskNotFound(f"no task {task_id}", task_id=task_id) from None

    async def get_task(self, task_id: str) -> Task:
        return self._get(task_id)

    async def list_tasks(
        self, states: StatesArg = None, *, limit: int = 100, after: str | None = None
    ) -> list[Task]:
        self._open()
        R.check_limit(limit)
        wanted = R.state_filter(states)
        found = sorted(
            (
                t
                for t in self._tasks.values()
                if (wanted is None or t.state in wanted) and (after is None or t.id > after)
            ),
            key=lambda t: t.id,
        )
        return found[:limit]

    async def pending_tasks(
        self, limit: int | None = None, *, order: PendingOrder = "priority"
    ) -> list[Task]:
        self._open()
        R.check_limit(limit)
        pending = [t for t in self._tasks.values() if t.state is TaskState.PENDING]
        if order == "priority":
            pending.sort(key=lambda t: (-t.priority, t.created_at, t.id))
        elif order == "age":
            pending.sort(key=lambda t: (t.created_at, t.id))
        else:
            raise InvalidRequest(f"unknown order {order!r}", field="order")
        return pending if limit is None else pending[:limit]

    async def leased_tasks(self, device_id: str | None = None) -> list[Task]:
        self._open()
        leased = [
            t
            for t in self._tasks.values()
            if t.state in R.LEASED and (device_id is None or t.assigned_device == device_id)
        ]
        leased.sort(key=lambda t: (t.scheduled_at or 0.0, t.id))
        return leased

    async def count_by_state(self) -> dict[TaskState, int]:
        self._open()
        counts = dict.fromkeys(TaskState, 0)
        for t in self._tasks.values():
            counts[t.state] += 1
        return counts

    # -- tasks: transitions -----------------------------------------------------------------
    def _refuse(
        self,
        task: Task,
        target: TaskState,
        lease_attempt: int | None,
        lease_device: str | None = None,
    ) -> StoreError:
        R.explain_refusal(
            task.id,
            state=task.state,
            attempt=task.attempt,
            assigned=task.assigned_device,
            target=target,
            lease_attempt=lease_attempt,
            lease_device=lease_device,
        )
        return StoreError(f"task {task.id}: transition refused")  # pragma: no cover

    @staticmethod
    def _close_attempt(task: Task, now: float, outcome: str, reason: str | None) -> Task:
        if not task.history or task.history[-1].ended_at is not None:
            return task
        last = _replace(task.history[-1], ended_at=now, outcome=outcome, reason=reason)
        return _replace(task, history=(*task.history[:-1], last))

    async def place(self, task_id: str, device_id: str, expected_attempt: int, now: float) -> Task:
        R.check_device_id(device_id)
        t = self._get(task_id)
        if not (t.state in R.PLACE_FROM and t.attempt == expected_attempt):
            raise self._refuse(t, TaskState.SCHEDULED, expected_attempt)
        attempt = t.attempt + 1
        record = AttemptRecord(attempt=attempt, device_id=device_id, placed_at=now)
        t = _replace(
            t,
            state=TaskState.SCHEDULED,
            attempt=attempt,
            assigned_device=device_id,
            scheduled_at=now,
            started_at=None,
            history=(*t.history, record),
        )
        self._tasks[task_id] = t
        return t

    async def place_many(
        self, placements: Sequence[Placement], now: float
    ) -> list[Task | FogmeshError]:
        placements = [Placement(*p) for p in placements]
        for p in placements:
            R.check_device_id(p.device_id)
        self._open()
        outcomes: list[Task | FogmeshError] = []
        for p in placements:
            try:
                outcomes.append(await self.place(p.task_id, p.device_id, p.expected_attempt, now))
            except (NotFound, SchedulingError) as exc:
                outcomes.append(exc)
        return outcomes

    async def mark_running(self, task_id: str, device_id: str, attempt: int, now: float) -> Task:
        t = self._get(task_id)
        if not (t.state in R.RUN_FROM and t.attempt == attempt and t.assigned_device == device_id):
            raise self._refuse(t, TaskState.RUNNING, attempt, device_id)
        t = _replace(t, state=TaskState.RUNNING, started_at=now)
        self._tasks[task_id] = t
        return t

    async def complete(
        self, task_id: str, device_id: str, attempt: int, result: Any, now: float
    ) -> Task:
        result = R.decode_json(R.encode_json(result, "result", R.MAX_RESULT_BYTES))
        t = self._get(task_id)
        if not (
            t.state in R.COMPLETE_FROM and t.attempt == attempt and t.assigned_device == device_id
        ):
            raise self._refuse(t, TaskState.COMPLETED, attempt, device_id)
        started = t.started_at if t.started_at is not None else now  # as the SQL store
        t = _replace(
            t, state=TaskState.COMPLETED, started_at=started, finished_at=now, result=result
        )
        t = self._close_attempt(t, now, "completed", None)
        self._tasks[task_id] = t
        return t

    async def fail(
        self, task_id: str, device_id: str, attempt: int, error: Mapping[str, Any], now: float
    ) -> Task:
        value = R.decode_json(
            R.encode_json(R.check_error_value(error), "error", R.MAX_RESULT_BYTES)
        )
        t = self._get(task_id)
        if not (t.state in R.FAIL_FROM and t.attempt == attempt and t.assigned_device == device_id):
            raise self._refuse(t, TaskState.FAILED, attempt, device_id)
        t = _replace(t, state=TaskState.FAILED, finished_at=now, error=value)
        t = self._close_attempt(t, now, "failed", str(value["reason"]))
        self._tasks[task_id] = t
        return t

    async def requeue(
        self, task_id: str, attempt: int, outcome: str, reason: str, now: float
    ) -> Task:
        R.check_outcome(outcome)
        t = self._get(task_id)
        if not (t.state in R.REQUEUE_FROM and t.attempt == attempt):
            raise self._refuse(t, TaskState.PENDING, attempt)
        t = self._close_attempt(t, now, outcome, reason)
        t = _replace(
            t, state=TaskState.PENDING, assigned_device=None, scheduled_at=None, started_at=None
        )
        charged = sum(1 for h in t.history if h.outcome not in R.NOT_CHARGED)
        if charged >= t.max_attempts:
            t = _replace(
                t,
                state=TaskState.FAILED,
                finished_at=now,
                error=R.exhausted(charged, outcome, reason),
            )
        self._tasks[task_id] = t
        return t

    async def cancel(self, task_id: str, now: float, reason: str = "cancelled") -> Task:
        t = self._get(task_id)
        if t.state not in R.CANCEL_FROM:
            raise self._refuse(t, TaskState.CANCELLED, None)
        t = self._close_attempt(t, now, "cancelled", reason)
        t = _replace(
            t,
            state=TaskState.CANCELLED,
            finished_at=now,
            error={"code": "cancelled", "reason": reason},
        )
        self._tasks[task_id] = t
        return t

    async def fail_expired(self, now: float) -> list[str]:
        self._open()
        expired = sorted(
            t.id
            for t in self._tasks.values()
            if t.state in R.EXPIRE_FROM and t.deadline is not None and t.deadline <= now
        )
        for task_id in expired:
            self._tasks[task_id] = _replace(
                self._tasks[task_id],
                state=TaskState.FAILED,
                finished_at=now,
                error=dict(R.DEADLINE_ERROR),
            )
        return expired

    # -- devices ----------------------------------------------------------------------------
    def _device(self, device_id: str) -> DeviceRecord:
        self._open()
        try:
            return self._devices[device_id]
        except KeyError:
            raise DeviceNotFound(f"no device {device_id}", device_id=device_id) from None

    async def upsert_device(
        self, profile: DeviceProfile, now: float, *, labels: Mapping[str, str] | None = None
    ) -> DeviceRecord:
        self._open()
        R.check_profile(profile)
        data = R.json_roundtrip(profile.to_dict())
        new_labels = None if labels is None else R.check_labels(labels)
        old = self._devices.get(profile.device_id)
        if old is None:
            rec = DeviceRecord(
                device_id=profile.device_id,
                device_type=profile.device_type,
                status=DeviceStatus.READY,
                profile=data,
                labels=new_labels or {},
                registered_at=now,
                last_heartbeat=now,
            )
        else:
            rec = _replace(
                old,
                device_type=profile.device_type,
                status=R.revived(old.status),
                profile=data,
                labels=old.labels if new_labels is None else new_labels,
                last_heartbeat=now,
            )
        self._devices[rec.device_id] = rec
        return rec

    async def heartbeat(
        self, device_id: str, now: float, profile: DeviceProfile | None = None
    ) -> DeviceRecord:
        if profile is not None:
            R.check_profile(profile)
            if profile.device_id != device_id:
                raise InvalidRequest("heartbeat profile is for another device", field="profile")
        old = self._device(device_id)
        rec = _replace(old, status=R.revived(old.status), last_heartbeat=now)
        if profile is not None:
            rec = _replace(
                rec, device_type=profile.device_type, profile=R.json_roundtrip(profile.to_dict())
            )
        self._devices[device_id] = rec
        return rec

    async def note_heartbeat(
        self, device_id: str, now: float, profile: DeviceProfile | None = None
    ) -> None:
        await self.heartbeat(device_id, now, profile)

    async def set_device_status(self, device_id: str, status: DeviceStatus) -> DeviceRecord:
        status = DeviceStatus(status)
        rec = _replace(self._device(device_id), status=status)
        self._devices[device_id] = rec
        return rec

    async def mark_lost(self, stale_before: float) -> list[str]:
        self._open()
        lost = sorted(
            d.device_id
            for d in self._devices.values()
            if d.status in R.LOSABLE and d.last_heartbeat < stale_before
        )
        for device_id in lost:
            self._devices[device_id] = _replace(self._devices[device_id], status=DeviceStatus.LOST)
        return lost

    async def get_device(self, device_id: str) -> DeviceRecord:
        return self._device(device_id)

    async def list_devices(self, status: DeviceStatus | None = None) -> list[DeviceRecord]:
        self._open()
        return sorted(
            (d for d in self._devices.values() if status is None or d.status == status),
            key=lambda d: d.device_id,
        )

    async def remove_device(self, device_id: str) -> None:
        self._device(device_id)
        del self._devices[device_id]

    async def add_model(self, device_id: str, model_id: str, now: float) -> None:
        R.check_model_id(model_id)
        rec = self._device(device_id)
        models = tuple(sorted({*rec.models, model_id}))
        self._devices[device_id] = _replace(rec, models=models)

    async def remove_model(self, device_id: str, model_id: str) -> None:
        rec = self._device(device_id)
        self._devices[device_id] = _replace(
            rec, models=tuple(m for m in rec.models if m != model_id)
        )

    # -- clusters and coordinator state ----------------------------------------------------
    async def save_clusters(self, clusters: Sequence[ClusterRecord], now: float) -> None:
        self._open()
        clusters = list(clusters)
        R.check_clusters(clusters)
        for c in clusters:
            R.check_cluster_term(c, self._clusters.get(c.cluster_id))
        self._clusters = {c.cluster_id: c for c in clusters}

    async def load_clusters(self) -> list[ClusterRecord]:
        self._open()
        return [self._clusters[k] for k in sorted(self._clusters)]

    async def spend_tickets(
        self,
        spent: Mapping[str, float],
        now: float,
        *,
        holders: Mapping[str, str] | None = None,
    ) -> None:
        self._open()
        checked = R.check_spent(spent)
        named = R.check_holders(holders, checked)
        if now > self._spent_min:  # something expired: forget it (rare, so O(ids) is fine)
            self._spent = {k: v for k, v in self._spent.items() if v >= now}
            self._holders = {k: v for k, v in self._holders.items() if k in self._spent}
            self._spent_min = min(self._spent.values(), default=math.inf)
        for ticket_id, holder in named.items():
            if ticket_id not in self._spent:  # an id spent before keeps its first holder
                self._holders[ticket_id] = holder
        self._spent.update(checked)
        self._spent_min = min([self._spent_min, *checked.values()])

    async def ticket_holders(self, now: float) -> dict[str, str]:
        self._open()
        return {k: v for k, v in self._holders.items() if self._spent.get(k, -math.inf) >= now}

    async def spent_tickets(self, now: float) -> dict[str, float]:
        self._open()
        return {k: v for k, v in self._spent.items() if v >= now}

    async def get_value(self, key: str) -> Any:
        self._open()
        return self._kv.get(key)

    async def set_value(self, key: str, value: Any) -> None:
        self._open()
        R.check_key(key)
        self._kv[key] = R.decode_json(R.encode_json(value, "value"))

    async def close(self) -> None:
        self._closed = True
