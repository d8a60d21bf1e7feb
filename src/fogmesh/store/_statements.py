"""The SQL the task side of ``SqlStore`` runs, built once, and the row ↔ value codecs.

Transitions are prebuilt conditional UPDATEs with bind parameters (``k_*`` in the WHERE, ``v_*``
in the SET), so a call only binds values: building and caching a statement each time cost more
than running it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

import msgspec
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    String,
    Update,
    bindparam,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from fogmesh.devices.model import DeviceType
from fogmesh.errors import StoreError
from fogmesh.fog.tasks import (
    AttemptRecord,
    Payload,
    Task,
    TaskConstraints,
    TaskPriority,
    TaskResources,
    TaskState,
    TaskType,
)

from . import _rules as R
from .base import DeviceRecord, DeviceStatus
from .schema import devices, task_attempts, tasks

__all__ = [
    "CANCEL",
    "CHUNK",
    "CLOSE_ATTEMPT",
    "COMPLETE",
    "EXHAUST",
    "FAIL",
    "LEASE_OF",
    "LOCK_TASKS",
    "PENDING_ORDER",
    "PLACE",
    "REQUEUE",
    "RUN",
    "TASKS_BY_IDS",
    "TASK_BY_ID",
    "Cas",
    "chunks",
    "fetch_tasks",
    "revived_status",
    "row_device",
    "row_task",
    "task_query",
    "task_row",
]

CHUNK: Final = 500  # ids per IN (...) list, far below every engine's parameter limit
PENDING_ORDER: Final[Mapping[str, tuple[str, ...]]] = {
    "priority": ("neg_priority", "created_at", "id"),
    "age": ("created_at", "id"),
}


class Spec(msgspec.Struct, frozen=True):
    """The part of a task that never changes after submit, stored as one JSON document."""

    resources: TaskResources
    constraints: TaskConstraints
    payload: Payload | None = None


SPEC_DECODER: Final = msgspec.json.Decoder(Spec)
SPEC_ENCODER: Final = msgspec.json.Encoder()


def revived_status() -> ColumnElement[str]:
    return case(
        (devices.c.status == DeviceStatus.DRAINING.value, DeviceStatus.DRAINING.value),
        else_=DeviceStatus.READY.value,
    )


def chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    return (ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK))


def task_query(
    *where: ColumnElement[bool], order: Sequence[str] = ("id",), limit: int | None = None
) -> Select[Any]:
    """Tasks matching ``where`` in ``order`` (column names; ``id`` breaks ties), each joined
    with its attempts: one statement per read, because with aiosqlite every statement costs
    several round trips to the driver's thread."""
    keys = [*order, "id"] if order[-1:] != ("id",) else list(order)
    inner = select(tasks).where(*where).order_by(*(tasks.c[k] for k in keys)).limit(limit)
    page = inner.subquery("page")
    return (
        select(
            page,
            task_attempts.c.attempt.label("h_attempt"),
            task_attempts.c.device_id.label("h_device"),
            task_attempts.c.placed_at.label("h_placed_at"),
            task_attempts.c.ended_at.label("h_ended_at"),
            task_attempts.c.outcome.label("h_outcome"),
            task_attempts.c.reason.label("h_reason"),
        )
        .select_from(page.outerjoin(task_attempts, task_attempts.c.task_id == page.c.id))
        .order_by(*(page.c[k] for k in keys), task_attempts.c.attempt)
    )


# Built once: the statements every transition ends with.
TASK_BY_ID: Final = task_query(tasks.c.id == bindparam("task_id"))
TASKS_BY_IDS: Final = task_query(tasks.c.id.in_(bindparam("ids", expanding=True)))
# Locks these tasks' rows for the transaction on PostgreSQL; SQLite compiles no FOR UPDATE (its
# write transactions hold the database lock from BEGIN IMMEDIATE).
LOCK_TASKS: Final = (
    select(tasks.c.id).where(tasks.c.id.in_(bindparam("ids", expanding=True))).with_for_update()
)


async def fetch_tasks(
    conn: AsyncConnection, query: Select[Any], params: Mapping[str, Any] | None = None
) -> list[Task]:
    out: list[Task] = []
    current: Row[Any] | None = None
    history: list[AttemptRecord] = []
    for r in await conn.execute(query, dict(params or {})):
        if current is None or r.id != current.id:
            if current is not None:
                out.append(row_task(current, tuple(history)))
            current, history = r, []
        if r.h_attempt is not None:
            history.append(
                AttemptRecord(
                    attempt=r.h_attempt,
                    device_id=r.h_device,
                    placed_at=r.h_placed_at,
                    ended_at=r.h_ended_at,
                    outcome=r.h_outcome,
                    reason=r.h_reason,
                )
            )
    if current is not None:
        out.append(row_task(current, tuple(history)))
    return out


class Cas(NamedTuple):
    stmt: Update
    target: TaskState
    by_attempt: bool  # WHERE attempt = :k_attempt
    by_device: bool  # WHERE assigned_device = :k_device


def _const(value: str) -> ColumnElement[str]:
    """A state name written into the SQL text. A bound constant would be looked up again for
    every row of an executemany, which showed in profiles of place_many and the reports."""
    if not value.isidentifier():  # state names are plain words; nothing here needs quoting
        raise ValueError(f"not a plain name: {value!r}")
    return literal_column(f"'{value}'", String)


def cas_statement(
    target: TaskState,
    allowed: Iterable[TaskState],
    *,
    by_attempt: bool,
    by_device: bool,
    **values: Any,
) -> Cas:
    """A transition as one conditional UPDATE, built once; ``values`` are constants or
    ``bindparam("v_...")``. The state names and ``None`` are written into the SQL text."""
    where: list[ColumnElement[bool]] = [
        tasks.c.id == bindparam("k_id"),
        # OR of equalities rather than IN: an IN list is an "expanding" parameter, which
        # executemany (used by place_many) does not accept.
        or_(*(tasks.c.state == _const(s.value) for s in sorted(allowed))),
    ]
    if by_attempt:
        where.append(tasks.c.attempt == bindparam("k_attempt"))
    if by_device:
        where.append(tasks.c.assigned_device == bindparam("k_device"))
    consts = {k: null() if v is None else v for k, v in values.items()}
    stmt = update(tasks).where(*where).values(state=_const(target.value), **consts)
    return Cas(stmt, target, by_attempt, by_device)


NOW: Final[BindParameter[float]] = bindparam("v_now")
PLACE: Final = cas_statement(
    TaskState.SCHEDULED,
    R.PLACE_FROM,
    by_attempt=True,
    by_device=False,
    attempt=bindparam("v_attempt"),
    assigned_device=bindparam("v_device"),
    scheduled_at=NOW,
    started_at=None,
)
RUN: Final = cas_statement(
    TaskState.RUNNING, R.RUN_FROM, by_attempt=True, by_device=True, started_at=NOW
)
COMPLETE: Final = cas_statement(
    TaskState.COMPLETED,
    R.COMPLETE_FROM,
    by_attempt=True,
    by_device=True,
    finished_at=NOW,
    # A result that overtook (or replaced) its "started" report: the task surely ran.
    started_at=func.coalesce(tasks.c.started_at, NOW),
    result=bindparam("v_result"),
)
FAIL: Final = cas_statement(
    TaskState.FAILED,
    R.FAIL_FROM,
    by_attempt=True,
    by_device=True,
    finished_at=NOW,
    error=bindparam("v_error"),
)
REQUEUE: Final = cas_statement(
    TaskState.PENDING,
    R.REQUEUE_FROM,
    by_attempt=True,
    by_device=False,
    assigned_device=None,
    scheduled_at=None,
    started_at=None,
)
CANCEL: Final = cas_statement(
    TaskState.CANCELLED,
    R.CANCEL_FROM,
    by_attempt=False,
    by_device=False,
    finished_at=NOW,
    error=bindparam("v_error"),
)
EXHAUST: Final = (
    update(tasks)
    .where(tasks.c.id == bindparam("k_id"))
    .values(state=TaskState.FAILED.value, finished_at=NOW, error=bindparam("v_error"))
)
CLOSE_ATTEMPT: Final = (
    update(task_attempts)
    .where(task_attempts.c.task_id == bindparam("k_id"), task_attempts.c.ended_at.is_(None))
    .values(ended_at=NOW, outcome=bindparam("v_outcome"), reason=bindparam("v_reason"))
)
LEASE_OF: Final = select(tasks.c.state, tasks.c.attempt, tasks.c.assigned_device).where(
    tasks.c.id == bindparam("k_id")
)


def task_row(t: Task) -> dict[str, Any]:
    priority = int(TaskPriority(t.priority))
    return {
        "id": t.id,
        "type": TaskType(t.type).value,
        "priority": priority,
        "neg_priority": -priority,
        "state": TaskState.PENDING.value,
        "attempt": 0,
        "max_attempts": t.max_attempts,
        "assigned_device": None,
        "deadline": t.deadline,
        "created_at": t.created_at,
        "scheduled_at": None,
        "started_at": None,
        "finished_at": None,
        "spec": SPEC_ENCODER.encode(Spec(t.resources, t.constraints, t.payload)).decode(),
        "result": None,
        "error": None,
    }


# Enum members by stored value: a dict lookup costs a fraction of ``TaskState(value)``, and a
# task read does three per row. A miss falls back to the enum, which raises the same error.
_TYPES: Final = {t.value: t for t in TaskType}
_PRIORITIES: Final = {p.value: p for p in TaskPriority}
_STATES: Final = {s.value: s for s in TaskState}


def row_task(r: Row[Any], history: tuple[AttemptRecord, ...]) -> Task:
    try:
        spec = SPEC_DECODER.decode(r.spec)
        return Task(
            id=r.id,
            type=_TYPES.get(r.type) or TaskType(r.type),
            priority=_PRIORITIES.get(r.priority) or TaskPriority(r.priority),
            resources=spec.resources,
            constraints=spec.constraints,
            payload=spec.payload,
            deadline=r.deadline,
            max_attempts=r.max_attempts,
            attempt=r.attempt,
            state=_STATES.get(r.state) or TaskState(r.state),
            assigned_device=r.assigned_device,
            created_at=r.created_at,
            scheduled_at=r.scheduled_at,
            started_at=r.started_at,
            finished_at=r.finished_at,
            result=R.decode_json(r.result),
            error=R.decode_json(r.error),
            history=history,
        )
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise StoreError(f"task {r.id} is unreadable: {exc}") from exc


def row_device(r: Row[Any], models: tuple[str, ...]) -> DeviceRecord:
    try:
        return DeviceRecord(
            device_id=r.id,
            device_type=DeviceType(r.device_type),
            status=DeviceStatus(r.status),
            profile=R.decode_json(r.profile),
            labels=R.decode_json(r.labels),
            models=models,
            registered_at=r.registered_at,
            last_heartbeat=r.last_heartbeat,
        )
    except ValueError as exc:
        raise StoreError(f"device {r.id} is unreadable: {exc}") from exc
