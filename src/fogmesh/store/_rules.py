"""Rules every store applies the same way: input checks, lease checks, JSON values.

Keeping them here is what makes the memory and SQL stores raise the same error for the same
call; the SQL store encodes the same rules as ``WHERE`` clauses and uses ``explain_refusal`` only
to say why a conditional update matched no row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from fogmesh.devices.model import DeviceProfile, DeviceType
from fogmesh.errors import IdempotencyConflict, InvalidRequest, StaleAttempt, StoreError
from fogmesh.fog.lifecycle import UNCHARGED_LOSSES
from fogmesh.fog.tasks import (
    MAX_PAYLOAD_BYTES,
    Task,
    TaskPriority,
    TaskState,
    TaskType,
    check_transition,
    is_legal_transition,
    validate_task,
)

from .base import ClusterRecord, DeviceStatus, StatesArg, SubmitKey

MAX_ID_CHARS: Final = 64
MAX_DEVICE_ID_CHARS: Final = 128
MAX_RESULT_BYTES: Final = MAX_PAYLOAD_BYTES  # bigger outputs travel as artefacts
LEASED: Final = frozenset({TaskState.SCHEDULED, TaskState.RUNNING})
# The task did nothing wrong: preempted; refused by a device (its policy said "not now", or it
# does not take the payload), which moves the task on; or lost with its link or the
# coordinator's downtime; or its device was removed by the operator.
NOT_CHARGED: Final = (
    frozenset({"preempted", "refused", "not_accepted", "removed"}) | UNCHARGED_LOSSES
)


def sources(target: TaskState) -> frozenset[TaskState]:
    """States from which ``target`` is legal (tasks.py stays the one source of truth)."""
    return frozenset(s for s in TaskState if is_legal_transition(s, target))


PLACE_FROM: Final = sources(TaskState.SCHEDULED)
RUN_FROM: Final = sources(TaskState.RUNNING)
COMPLETE_FROM: Final = sources(TaskState.COMPLETED) & LEASED
FAIL_FROM: Final = sources(TaskState.FAILED) & LEASED
REQUEUE_FROM: Final = sources(TaskState.PENDING) & LEASED
CANCEL_FROM: Final = sources(TaskState.CANCELLED)
EXPIRE_FROM: Final = frozenset({TaskState.PENDING}) & sources(TaskState.FAILED)


def encode_json(value: Any, what: str, limit: int | None = None) -> str:
    try:
        raw = msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidRequest(f"{what} is not a JSON value: {exc}", field=what) from exc
    if limit is not None and len(raw) > limit:
        raise InvalidRequest(f"{what} is {len(raw)} bytes; the limit is {limit}", field=what)
    return raw.decode()


def decode_json(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise StoreError(f"stored JSON value is unreadable: {exc}") from exc


def json_roundtrip(value: Any) -> Any:
    """What a value looks like after a trip through a JSON column (tuples become lists)."""
    return msgspec.json.decode(msgspec.json.encode(value))


def check_new_task(task: Task) -> None:
    """A task fit to be stored as new; ``InvalidRequest`` names what is wrong."""
    if not isinstance(task, Task):
        raise InvalidRequest(f"expected a Task, got {type(task).__name__}")
    if not isinstance(task.id, str) or not 0 < len(task.id) <= MAX_ID_CHARS:
        raise InvalidRequest(f"task id must be 1–{MAX_ID_CHARS} characters", field="id")
    if task.type not in set(TaskType):
        raise InvalidRequest(f"unknown task type {task.type!r}", field="type")
    if task.priority not in set(TaskPriority):
        raise InvalidRequest(f"unknown task priority {task.priority!r}", field="priority")
    try:
        validate_task(task)
    except (TypeError, ValueError, OverflowError) as exc:  # a payload that is not JSON
        raise InvalidRequest(f"task is not storable: {exc}", field="payload") from exc
    if task.state is not TaskState.PENDING or task.attempt != 0 or task.history:
        raise InvalidRequest("a new task must be pending, attempt 0, without history")
    if task.assigned_device is not None or task.result is not None or task.error is not None:
        raise InvalidRequest("a new task has no device, result or error")
    if not math.isfinite(task.created_at):
        raise InvalidRequest("created_at must be a finite time", field="created_at")
    if task.deadline is not None and not math.isfinite(task.deadline):
        raise InvalidRequest("deadline must be a finite time", field="deadline")


def check_new_tasks(tasks: Sequence[Task]) -> None:
    seen: set[str] = set()
    for task in tasks:
        check_new_task(task)
        if task.id in seen:
            raise InvalidRequest(f"task id {task.id} appears twice", field="id")
        seen.add(task.id)


def check_device_id(device_id: str) -> None:
    if not isinstance(device_id, str) or not 0 < len(device_id) <= MAX_DEVICE_ID_CHARS:
        raise InvalidRequest(
            f"device id must be 1–{MAX_DEVICE_ID_CHARS} characters", field="device_id"
        )


_DEVICE_TYPES = frozenset(DeviceType)  # built once: iterating an Enum per heartbeat shows


def check_profile(profile: DeviceProfile) -> None:
    if not isinstance(profile, DeviceProfile):
        raise InvalidRequest(f"expected a DeviceProfile, got {type(profile).__name__}")
    check_device_id(profile.device_id)
    if profile.device_type not in _DEVICE_TYPES:
        raise InvalidRequest(f"unknown device type {profile.device_type!r}", field="device_type")


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InvalidRequest("device labels must map strings to strings", field="labels")
    return dict(labels)


def check_error_value(error: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(error, Mapping) or not {"code", "reason"} <= error.keys():
        raise InvalidRequest("error must be a mapping with 'code' and 'reason'", field="error")
    return dict(error)


def check_outcome(outcome: str) -> None:
    if not isinstance(outcome, str) or not outcome or outcome == "completed":
        raise InvalidRequest("requeue needs an outcome such as lost, timeout, preempted")


def check_clusters(clusters: Sequence[ClusterRecord]) -> None:
    ids = [c.cluster_id for c in clusters]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("cluster ids must be unique", field="cluster_id")
    for c in clusters:
        if c.term < 0:
            raise InvalidRequest("cluster term must be ≥ 0", field="term")
        if c.head is not None and c.head not in c.members:
            raise InvalidRequest(f"cluster {c.cluster_id}: head is not a member", field="head")


def check_cluster_term(new: ClusterRecord, old: ClusterRecord | None) -> None:
    if old is None:
        return
    if new.term < old.term or (new.term == old.term and new.head != old.head):
        raise StaleAttempt(
            f"cluster {new.cluster_id}: term {new.term} head {new.head!r} conflicts with stored "
            f"term {old.term} head {old.head!r}",
            cluster_id=new.cluster_id,
        )


def state_filter(states: StatesArg) -> frozenset[TaskState] | None:
    if states is None:
        return None
    if isinstance(states, TaskState):
        return frozenset({states})
    return frozenset(TaskState(s) for s in states)


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise InvalidRequest("limit must be ≥ 0", field="limit")


def explain_refusal(
    task_id: str,
    *,
    state: TaskState,
    attempt: int,
    assigned: str | None,
    target: TaskState,
    lease_attempt: int | None,
    lease_device: str | None = None,
) -> None:
    """Raise the error for a transition that does not apply to the task as it is now.

    The lease is checked first: a late report from an old attempt is ``StaleAttempt`` even when
    the task has since finished, which is what the reporting device needs to hear.
    """
    if lease_attempt is not None and attempt != lease_attempt:
        raise StaleAttempt(
            f"task {task_id}: attempt {lease_attempt} is not the current attempt {attempt}",
            task_id=task_id,
            attempt=lease_attempt,
            current=attempt,
        )
    if lease_device is not None and assigned != lease_device:
        raise StaleAttempt(
            f"task {task_id}: device {lease_device} does not hold the lease",
            task_id=task_id,
            device_id=lease_device,
        )
    check_transition(task_id, state, target)


LOSABLE: Final = frozenset({DeviceStatus.READY, DeviceStatus.DRAINING})
DEADLINE_ERROR: Final[Mapping[str, Any]] = {"code": "deadline", "reason": "deadline"}


def revived(status: DeviceStatus) -> DeviceStatus:
    """A device that speaks again is back in service, unless an operator is draining it."""
    return DeviceStatus.DRAINING if status is DeviceStatus.DRAINING else DeviceStatus.READY


def exhausted(charged: int, outcome: str, reason: str) -> dict[str, Any]:
    return {
        "code": "max_attempts",
        "reason": f"gave up after {charged} attempts; last: {outcome}: {reason}",
    }


def check_model_id(model_id: str) -> None:
    if not isinstance(model_id, str) or not 0 < len(model_id) <= 256:
        raise InvalidRequest("model id must be 1–256 characters", field="model_id")


def check_spent(spent: Mapping[str, float]) -> dict[str, float]:
    """Spent one-shot ticket ids → expiry, checked and copied."""
    if not isinstance(spent, Mapping):
        raise InvalidRequest("spent tickets must be a mapping of id to expiry", field="spent")
    out: dict[str, float] = {}
    for ticket_id, expires_at in spent.items():
        if not isinstance(ticket_id, str) or not 0 < len(ticket_id) <= 256:
            raise InvalidRequest("a ticket id must be 1–256 characters", field="ticket_id")
        if (
            isinstance(expires_at, bool)
            or not isinstance(expires_at, int | float)
            or not math.isfinite(expires_at)
        ):
            raise InvalidRequest("a ticket's expiry must be a finite number", field="expires_at")
        out[ticket_id] = float(expires_at)
    return out


def check_holders(holders: Mapping[str, str] | None, spent: Mapping[str, float]) -> dict[str, str]:
    """Spent ticket id → the device that spent it; every id among ``spent``."""
    if holders is None:
        return {}
    if not isinstance(holders, Mapping):
        raise InvalidRequest("ticket holders must be a mapping of id to holder", field="holders")
    out: dict[str, str] = {}
    for ticket_id, holder in holders.items():
        if ticket_id not in spent:
            raise InvalidRequest("a ticket holder is given for an id not spent", field="holders")
        if not isinstance(holder, str) or not 0 < len(holder) <= 128:
            raise InvalidRequest("a ticket holder must be 1–128 characters", field="holders")
        out[ticket_id] = holder
    return out


def check_submit_keys(
    tasks: Sequence[Task], keys: Sequence[SubmitKey | None]
) -> list[SubmitKey | None]:
    """One well-formed idempotency key (or None) per task, no key twice."""
    keys = list(keys)
    if len(keys) != len(tasks):
        raise InvalidRequest("one idempotency key (or none) per task", field="idempotency_key")
    seen: set[str] = set()
    for index, k in enumerate(keys):
        if k is None:
            continue
        field = f"tasks[{index}].idempotency_key"
        if not isinstance(k, SubmitKey) or not isinstance(k.key, str) or not 0 < len(k.key) <= 256:
            raise InvalidRequest("an idempotency key must be 1–256 characters", field=field)
        if (
            isinstance(k.expires_at, bool)
            or not isinstance(k.expires_at, int | float)
            or not math.isfinite(k.expires_at)
        ):
            raise InvalidRequest("a key's expiry must be a finite number", field=field)
        if k.key in seen:
            raise InvalidRequest(
                f"idempotency key {k.key!r} is given to two tasks of one submit", field=field
            )
        seen.add(k.key)
    return keys


def same_spec(held: Task, retry: Task) -> bool:
    """Whether ``retry`` asks for what ``held`` asked for: everything a submit says about a task
    but its id and time. Both are compared as stored (through JSON: a tuple is a list)."""
    a, b = (msgspec.json.decode(msgspec.json.encode(t), type=Task) for t in (held, retry))
    return all(getattr(a, f) == getattr(b, f) for f in _SPEC_FIELDS)


_SPEC_FIELDS: Final = (
    "type",
    "priority",
    "resources",
    "constraints",
    "payload",
    "deadline",
    "max_attempts",
)


def key_conflict(key: str, task_id: str) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"idempotency key {key!r} was used for task {task_id} with a different spec; "
        "use a new key for a different task",
        task_id=task_id,
    )


def check_key(key: str) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= 256:
        raise InvalidRequest("key must be 1–256 characters", field="key")
