"""``SqlStore``: the ``Store`` on SQLAlchemy Core, one code path for SQLite and PostgreSQL.

Every task transition is one conditional ``UPDATE ... WHERE id = ? AND attempt = ? AND state IN
(...)`` whose row count decides; the row is read afterwards only to say why it did not apply.
That is what makes "completed exactly once" hold across coroutines, processes and replicas: on
SQLite the database lock serialises writers; on PostgreSQL (READ COMMITTED) an UPDATE that waited
for a concurrent one re-checks its WHERE on the newest row version. See docs/store.md.

Connection handling is in ``_sqlconn``, the prebuilt statements in ``_statements``, devices and
clusters in ``_sqldevices``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

import msgspec
from sqlalchemy import ColumnElement, delete, func, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fogmesh.errors import (
    FogmeshError,
    InvalidRequest,
    StaleAttempt,
    StoreError,
    TaskNotFound,
)
from fogmesh.fog.tasks import AttemptRecord, Task, TaskState

from . import _rules as R
from . import _statements as Q
from ._batch import Batcher
from ._group import GroupCommitter
from ._sqlconn import Conflict, SqliteSync, make_engine, normalise_url
from ._sqldevices import SqlDevices
from .base import PendingOrder, Placement, StatesArg, SubmitKey
from .migrate import upgrade_to_head
from .schema import idempotency_keys, task_attempts, tasks

__all__ = ["SqlStore", "SqliteSync", "normalise_url"]

# Under a steady stream of reports, wait this long after a commit to gather the next batch: a
# report's acknowledgement may come up to 2 ms later, and the coordinator makes several times
# fewer commits (and scheduling rounds, which follow each batch of completions).
REPORT_LINGER_S: Final = 0.002
# Delete expired idempotency keys at most this often (by the submits' ``now``): a key that
# expired since is still found by the primary key and handled on the slow path.
KEY_PRUNE_EVERY_S: Final = 60.0
_SCHEMA_LOCK_KEY: Final = 0x666F676D  # "fogm": advisory lock id for migrations on PostgreSQL


class _Report(NamedTuple):
    """A device's "started" (``result`` unused) or "completed" report, as one batch item."""

    target: TaskState  # RUNNING or COMPLETED
    task_id: str
    device_id: str
    attempt: int
    now: float
    result: str | None = None  # JSON, already size-checked


class _Keyed(NamedTuple):
    """One ``add_keyed_tasks`` call, as one batch item."""

    tasks: list[Task]  # checked
    keys: list[SubmitKey | None]  # checked, one per task
    now: float


def _stored_time(now: float) -> float:
    """A time as the REAL / double precision columns give it back: an ``int`` comes back a
    ``float``."""
    return float(now) if isinstance(now, int) else now


class SqlStore(SqlDevices):
    """``Store`` on SQLite (embedded default) or PostgreSQL. Create with ``await SqlStore.open``."""

    def __init__(
        self, engine: AsyncEngine, *, group_commit: bool = True, max_batch: int = 2000
    ) -> None:
        super().__init__(engine, batch_heartbeats=group_commit)
        self._group = (
            GroupCommitter(self._insert_tasks, max_batch=max_batch) if group_commit else None
        )
        self._next_key_prune = float("-inf")  # expired idempotency keys: next DELETE (by now)
        # Keyed submits from many clients share commits too (the Python client keys every task).
        self._keyed: Batcher[_Keyed, list[str]] | None = (
            Batcher(
                self._apply_keyed,
                max_batch=max_batch,
                name="keyed-submits",
                weight=lambda item: len(item.tasks),
            )
            if group_commit
            else None
        )
        # Reports and heartbeats come one per message from many devices at once; batching
        # them is what lets one coordinator keep up (docs/store.md, "Group commit").
        self._reports: Batcher[_Report, Task] | None = (
            Batcher(
                self._apply_reports, max_batch=max_batch, name="reports", linger=REPORT_LINGER_S
            )
            if group_commit
            else None
        )

    @classmethod
    async def open(
        cls,
        url: str | URL,
        *,
        schema: str | None = None,
        group_commit: bool = True,
        max_batch: int = 2000,
        sqlite_synchronous: SqliteSync = "FULL",
        busy_timeout_s: float = 30.0,
    ) -> SqlStore:
        """Connect, migrate the schema to the current version, and return the store.

        ``schema`` (PostgreSQL only) puts every table in that schema, which must exist.
        ``sqlite_synchronous``: ``FULL`` makes each commit survive power loss; ``NORMAL`` only
        process crashes (see docs/store.md).
        """
        engine = make_engine(
            url,
            schema=schema,
            sqlite_synchronous=sqlite_synchronous,
            busy_timeout_s=busy_timeout_s,
        )
        store = cls(engine, group_commit=group_commit, max_batch=max_batch)
        try:
            await store._migrate()
        except BaseException:
            await engine.dispose()
            raise
        return store

    @property
    def group_commit_stats(self) -> tuple[int, int]:
        """(commits, tasks) written by group commit so far."""
        return (self._group.batches, self._group.tasks) if self._group else (0, 0)

    async def _migrate(self) -> None:
        async with self._write() as conn:
            if not self._sqlite:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY}
                )
            await conn.run_sync(upgrade_to_head)

    # -- tasks: submit and read -------------------------------------------------------------
    async def add_task(self, task: Task) -> None:
        await self.add_tasks([task])

    async def add_tasks(self, new: Sequence[Task]) -> None:
        new = list(new)
        R.check_new_tasks(new)
        if not new:
            return
        if self._closed:
            raise StoreError("store is closed")
        try:
            if self._group is not None:
                await self._group.submit(new)
            else:
                await self._insert_tasks(new)
        except Conflict:
            raise await self._explain_conflict(new) from None

    async def add_keyed_tasks(
        self, tasks: Sequence[Task], keys: Sequence[SubmitKey | None], now: float
    ) -> list[str]:
        new = list(tasks)
        R.check_new_tasks(new)
        item = _Keyed(new, R.check_submit_keys(new, keys), now)
        if not new:
            return []
        if self._closed:
            raise StoreError("store is closed")
        if self._keyed is not None:
            return await self._keyed.submit(item)
        outcome = (await self._apply_keyed([item]))[0]
        if isinstance(outcome, FogmeshError):
            raise outcome
        return outcome

    async def _apply_keyed(self, items: Sequence[_Keyed]) -> list[list[str] | FogmeshError]:
        """Keyed submits in one transaction, each all or none.

        Most keys are new, so the batch is first written without reading the keys: the primary
        key on ``idempotency_keys`` refuses a held one (a retry, or an expired key not yet
        pruned), which undoes the batch. Each call is then tried alone, reading its keys first,
        twice (the second read sees a key another writer inserted after the first)."""
        try:
            return await self._write_keyed(items, look=False)
        except Conflict:
            pass
        outcomes: list[list[str] | FogmeshError] = []
        for item in items:
            outcome: list[str] | FogmeshError | None = None
            for _ in range(2):
                try:
                    outcome = (await self._write_keyed([item], look=True))[0]
                    break
                except Conflict:
                    continue
                except FogmeshError as exc:
                    outcome = exc
                    break
            outcomes.append(
                outcome if outcome is not None else await self._explain_conflict(item.tasks)
            )
        return outcomes

    async def _write_keyed(
        self, items: Sequence[_Keyed], *, look: bool
    ) -> list[list[str] | FogmeshError]:
        wanted = sorted({k.key for item in items for k in item.keys if k is not None})
        outcomes: list[list[str] | FogmeshError] = []
        task_rows: list[dict[str, Any]] = []
        key_rows: list[dict[str, Any]] = []
        now = max(item.now for item in items)
        async with self._write() as conn:
            if look or now >= self._next_key_prune:
                await conn.execute(
                    delete(idempotency_keys).where(idempotency_keys.c.expires_at < now)
                )
                self._next_key_prune = now + KEY_PRUNE_EVERY_S
            held: dict[str, Task] = {}  # key → the task stored under it
            if look:
                held = await self._held_keys(conn, wanted)
            for item in items:
                ids: list[str] = []
                mine: dict[str, Task] = {}
                error: FogmeshError | None = None
                new: list[Task] = []
                for task, key in zip(item.tasks, item.keys, strict=True):
                    found = None if key is None else held.get(key.key)
                    if key is not None and found is not None:
                        if not R.same_spec(found, task):
                            error = R.key_conflict(key.key, found.id)
                            break
                        ids.append(found.id)
                        continue
                    ids.append(task.id)
                    new.append(task)
                    if key is not None:
                        mine[key.key] = task
                        key_rows.append(
                            {"key": key.key, "task_id": task.id, "expires_at": key.expires_at}
                        )
                if error is not None:
                    # Nothing of this call: drop the key rows it queued.
                    key_rows = [r for r in key_rows if r["key"] not in mine]
                    outcomes.append(error)
                    continue
                held.update(mine)  # a later call in this batch with the same key finds it
                task_rows += [Q.task_row(t) for t in new]
                outcomes.append(ids)
            if task_rows:
                await conn.execute(tasks.insert(), task_rows)
            if key_rows:
                await conn.execute(idempotency_keys.insert(), key_rows)
        return outcomes

    async def _held_keys(self, conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Task]:
        """Of ``keys``, those held, each with its task as stored (the expired ones are gone)."""
        task_of: dict[str, str] = {}
        for chunk in Q.chunks(keys):
            query = select(idempotency_keys.c.key, idempotency_keys.c.task_id).where(
                idempotency_keys.c.key.in_(chunk)
            )
            for r in await conn.execute(query):
                task_of[r.key] = r.task_id
        found: dict[str, Task] = {}
        for chunk in Q.chunks(sorted(set(task_of.values()))):
            for t in await Q.fetch_tasks(conn, Q.TASKS_BY_IDS, {"ids": list(chunk)}):
                found[t.id] = t
        return {k: found[i] for k, i in task_of.items()}

    async def _insert_tasks(self, new: Sequence[Task]) -> None:
        rows = [Q.task_row(t) for t in new]
        async with self._write() as conn:
            await conn.execute(tasks.insert(), rows)

    async def _explain_conflict(self, new: Sequence[Task]) -> StoreError | InvalidRequest:
        ids = [t.id for t in new]
        async with self._read() as conn:
            taken = [
                r.id
                for chunk in Q.chunks(ids)
                for r in await conn.execute(select(tasks.c.id).where(tasks.c.id.in_(chunk)))
            ]
        if taken:
            return InvalidRequest(f"task id {min(taken)} already exists", field="id")
        return StoreError("submit refused by a database constraint")

    async def get_task(self, task_id: str) -> Task:
        async with self._read() as conn:
            return await self._load_task(conn, task_id)

    async def _load_task(self, conn: AsyncConnection, task_id: str) -> Task:
        found = await Q.fetch_tasks(conn, Q.TASK_BY_ID, {"task_id": task_id})
        if not found:
            raise TaskNotFound(f"no task {task_id}", task_id=task_id)
        return found[0]

    async def _select_tasks(
        self,
        conn: AsyncConnection,
        *where: ColumnElement[bool],
        order: Sequence[str] = ("id",),
        limit: int | None = None,
    ) -> list[Task]:
        return await Q.fetch_tasks(conn, Q.task_query(*where, order=order, limit=limit))

    async def list_tasks(
        self, states: StatesArg = None, *, limit: int = 100, after: str | None = None
    ) -> list[Task]:
        R.check_limit(limit)
        wanted = R.state_filter(states)
        where: list[ColumnElement[bool]] = []
        if wanted is not None:
            where.append(tasks.c.state.in_([s.value for s in wanted]))
        if after is not None:
            where.append(tasks.c.id > after)
        async with self._read() as conn:
            return await self._select_tasks(conn, *where, limit=limit)

    async def pending_tasks(
        self, limit: int | None = None, *, order: PendingOrder = "priority"
    ) -> list[Task]:
        R.check_limit(limit)
        if order not in Q.PENDING_ORDER:
            raise InvalidRequest(f"unknown order {order!r}", field="order")
        async with self._read() as conn:
            return await self._select_tasks(
                conn,
                tasks.c.state == TaskState.PENDING.value,
                order=Q.PENDING_ORDER[order],
                limit=limit,
            )

    async def leased_tasks(self, device_id: str | None = None) -> list[Task]:
        where: list[ColumnElement[bool]] = [tasks.c.state.in_([s.value for s in R.LEASED])]
        if device_id is not None:
            where.append(tasks.c.assigned_device == device_id)
        async with self._read() as conn:
            return await self._select_tasks(conn, *where, order=("scheduled_at", "id"))

    async def count_by_state(self) -> dict[TaskState, int]:
        counts = dict.fromkeys(TaskState, 0)
        async with self._read() as conn:
            result = await conn.execute(select(tasks.c.state, func.count()).group_by(tasks.c.state))
            for state, n in result:
                counts[TaskState(state)] = int(n)
        return counts

    # -- tasks: transitions -----------------------------------------------------------------
    async def _cas(
        self,
        conn: AsyncConnection,
        cas: Q.Cas,
        task_id: str,
        *,
        lease_attempt: int | None = None,
        lease_device: str | None = None,
        **values: Any,
    ) -> None:
        """The one conditional UPDATE; when it matches nothing, raise why."""
        params: dict[str, Any] = {"k_id": task_id, **{f"v_{k}": v for k, v in values.items()}}
        if cas.by_attempt:
            params["k_attempt"] = lease_attempt
        if cas.by_device:
            params["k_device"] = lease_device
        result = await conn.execute(cas.stmt, params)
        if result.rowcount == 1:
            return
        row = (await conn.execute(Q.LEASE_OF, {"k_id": task_id})).first()
        if row is None:
            raise TaskNotFound(f"no task {task_id}", task_id=task_id)
        R.explain_refusal(
            task_id,
            state=TaskState(row.state),
            attempt=row.attempt,
            assigned=row.assigned_device,
            target=cas.target,
            lease_attempt=lease_attempt,
            lease_device=lease_device,
        )
        raise StaleAttempt(f"task {task_id} changed concurrently", task_id=task_id)

    async def _close_attempt(
        self, conn: AsyncConnection, task_id: str, now: float, outcome: str, reason: str | None
    ) -> None:
        await conn.execute(
            Q.CLOSE_ATTEMPT,
            {"k_id": task_id, "v_now": now, "v_outcome": outcome, "v_reason": reason},
        )

    async def place(self, task_id: str, device_id: str, expected_attempt: int, now: float) -> Task:
        R.check_device_id(device_id)
        async with self._write() as conn:
            await self._cas(
                conn,
                Q.PLACE,
                task_id,
                lease_attempt=expected_attempt,
                attempt=expected_attempt + 1,
                device=device_id,
                now=now,
            )
            await conn.execute(
                task_attempts.insert(),
                {
                    "task_id": task_id,
                    "attempt": expected_attempt + 1,
                    "device_id": device_id,
                    "placed_at": now,
                },
            )
            return await self._load_task(conn, task_id)

    async def place_many(
        self, placements: Sequence[Placement], now: float
    ) -> list[Task | FogmeshError]:
        placements = [Placement(*p) for p in placements]
        for p in placements:
            R.check_device_id(p.device_id)
        outcomes: list[FogmeshError | None] = []
        winners: list[Placement] = []
        async with self._write() as conn:
            # The tasks as they are, rows locked (SQLite: the write lock; PostgreSQL: FOR
            # UPDATE), so what this read says still holds when the UPDATEs below run; they stay
            # conditional anyway. Each returned task is this pre-image plus the placement.
            view = await self._locked_tasks(conn, {p.task_id for p in placements})
            placed_at = _stored_time(now)
            for p in placements:
                t = view.get(p.task_id)
                if t is None:
                    outcomes.append(TaskNotFound(f"no task {p.task_id}", task_id=p.task_id))
                    continue
                if t.state in R.PLACE_FROM and t.attempt == p.expected_attempt:
                    attempt = t.attempt + 1
                    view[p.task_id] = msgspec.structs.replace(
                        t,
                        state=TaskState.SCHEDULED,
                        attempt=attempt,
                        assigned_device=p.device_id,
                        scheduled_at=placed_at,
                        started_at=None,
                        history=(
                            *t.history,
                            AttemptRecord(
                                attempt=attempt, device_id=p.device_id, placed_at=placed_at
                            ),
                        ),
                    )
                    winners.append(p)
                    outcomes.append(None)
                    continue
                try:
                    R.explain_refusal(
                        p.task_id,
                        state=t.state,
                        attempt=t.attempt,
                        assigned=t.assigned_device,
                        target=TaskState.SCHEDULED,
                        lease_attempt=p.expected_attempt,
                    )
                except FogmeshError as exc:
                    outcomes.append(exc)
            await self._place_winners(conn, winners, now)
        return [
            view[p.task_id] if o is None else o for p, o in zip(placements, outcomes, strict=True)
        ]

    async def _locked_tasks(self, conn: AsyncConnection, ids: set[str]) -> dict[str, Task]:
        """These tasks as stored, rows locked for this transaction, so that what this read says
        still holds when the transaction's UPDATEs run and a task it returns plus the
        transitions applied to it is what a read after them would give.

        SQLite: ``BEGIN IMMEDIATE`` already holds the write lock. PostgreSQL: the rows are
        locked (FOR UPDATE) by a statement of their own *before* they are read: a locking read
        that waited for a concurrent writer returns that writer's new version of the locked
        row, but rows of other tables (the attempts) as its snapshot had them.
        """
        order = sorted(ids)  # PostgreSQL: every writer locks in id order, so none deadlock
        if not self._sqlite:
            for chunk in Q.chunks(order):
                await conn.execute(Q.LOCK_TASKS, {"ids": list(chunk)})
        view: dict[str, Task] = {}
        for chunk in Q.chunks(order):
            for t in await Q.fetch_tasks(conn, Q.TASKS_BY_IDS, {"ids": list(chunk)}):
                view[t.id] = t
        return view

    async def _place_winners(
        self, conn: AsyncConnection, winners: Sequence[Placement], now: float
    ) -> None:
        if not winners:
            return
        result = await conn.execute(
            Q.PLACE.stmt,
            [
                {
                    "k_id": p.task_id,
                    "k_attempt": p.expected_attempt,
                    "v_attempt": p.expected_attempt + 1,
                    "v_device": p.device_id,
                    "v_now": now,
                }
                for p in winners
            ],
        )
        self._check_applied(result.rowcount, len(winners), "placement")
        await conn.execute(
            task_attempts.insert(),
            [
                {
                    "task_id": p.task_id,
                    "attempt": p.expected_attempt + 1,
                    "device_id": p.device_id,
                    "placed_at": now,
                }
                for p in winners
            ],
        )

    def _check_applied(self, rowcount: int, expected: int, what: str) -> None:
        """Cannot fail while the rows are locked; if it does, undo the whole batch rather than
        return tasks built from a pre-image that did not hold. (PostgreSQL's driver does not
        count the rows of an executemany.)"""
        if rowcount != expected and self._engine.dialect.supports_sane_multi_rowcount:
            raise StoreError(f"a batch {what} matched {rowcount} of {expected} tasks")

    async def mark_running(self, task_id: str, device_id: str, attempt: int, now: float) -> Task:
        return await self._report(_Report(TaskState.RUNNING, task_id, device_id, attempt, now))

    async def complete(
        self, task_id: str, device_id: str, attempt: int, result: Any, now: float
    ) -> Task:
        encoded = R.encode_json(result, "result", R.MAX_RESULT_BYTES)
        return await self._report(
            _Report(TaskState.COMPLETED, task_id, device_id, attempt, now, encoded)
        )

    async def _report(self, report: _Report) -> Task:
        if self._reports is not None:
            return await self._reports.submit(report)
        outcome = (await self._apply_reports([report]))[0]
        if isinstance(outcome, FogmeshError):
            raise outcome
        return outcome

    async def _apply_reports(self, reports: Sequence[_Report]) -> list[Task | FogmeshError]:
        """Apply "started" / "completed" reports in order in one transaction.

        Each report is checked against the row as the reports before it in the batch left it,
        exactly as ``_cas`` would check it alone; the UPDATEs stay conditional.
        """
        outcomes: list[FogmeshError | None] = []
        runs: list[dict[str, Any]] = []
        completes: list[dict[str, Any]] = []
        async with self._write() as conn:
            # As in place_many: a locked pre-image, each report applied to it in order.
            view = await self._locked_tasks(conn, {r.task_id for r in reports})
            for r in reports:
                t = view.get(r.task_id)
                if t is None:
                    outcomes.append(TaskNotFound(f"no task {r.task_id}", task_id=r.task_id))
                    continue
                running = r.target is TaskState.RUNNING
                allowed = R.RUN_FROM if running else R.COMPLETE_FROM
                if (
                    t.state in allowed
                    and t.attempt == r.attempt
                    and t.assigned_device == r.device_id
                ):
                    now = _stored_time(r.now)
                    params = {
                        "k_id": r.task_id,
                        "k_attempt": r.attempt,
                        "k_device": r.device_id,
                        "v_now": r.now,
                    }
                    if running:
                        view[r.task_id] = msgspec.structs.replace(
                            t, state=TaskState.RUNNING, started_at=now
                        )
                        runs.append(params)
                    else:
                        view[r.task_id] = msgspec.structs.replace(
                            t,
                            state=TaskState.COMPLETED,
                            started_at=now if t.started_at is None else t.started_at,
                            finished_at=now,
                            result=R.decode_json(r.result),  # as a read decodes the column
                            history=tuple(
                                msgspec.structs.replace(
                                    h, ended_at=now, outcome="completed", reason=None
                                )
                                if h.ended_at is None
                                else h
                                for h in t.history
                            ),
                        )
                        completes.append({**params, "v_result": r.result})
                    outcomes.append(None)
                    continue
                try:
                    R.explain_refusal(
                        r.task_id,
                        state=t.state,
                        attempt=t.attempt,
                        assigned=t.assigned_device,
                        target=r.target,
                        lease_attempt=r.attempt,
                        lease_device=r.device_id,
                    )
                    raise StaleAttempt(f"task {r.task_id} changed concurrently", task_id=r.task_id)
                except FogmeshError as exc:
                    outcomes.append(exc)
            # All "started" first: a task started and completed within one batch must pass
            # RUNNING on its way, as it did on the device. (A task has at most one of each in a
            # batch: RUNNING and COMPLETED are not sources of themselves.)
            for stmt, rows in ((Q.RUN.stmt, runs), (Q.COMPLETE.stmt, completes)):
                if rows:
                    result = await conn.execute(stmt, rows)
                    self._check_applied(result.rowcount, len(rows), "report")
            if completes:
                await conn.execute(
                    Q.CLOSE_ATTEMPT,
                    [
                        {"k_id": c["k_id"], "v_now": c["v_now"], "v_outcome": "completed",
                         "v_reason": None}
                        for c in completes
                    ],
                )  # fmt: skip
        # Every report that applied gets its task as the whole batch left it.
        return [view[r.task_id] if o is None else o for r, o in zip(reports, outcomes, strict=True)]

    async def fail(
        self, task_id: str, device_id: str, attempt: int, error: Mapping[str, Any], now: float
    ) -> Task:
        value = R.check_error_value(error)
        encoded = R.encode_json(value, "error", R.MAX_RESULT_BYTES)
        async with self._write() as conn:
            await self._cas(
                conn,
                Q.FAIL,
                task_id,
                lease_attempt=attempt,
                lease_device=device_id,
                now=now,
                error=encoded,
            )
            await self._close_attempt(conn, task_id, now, "failed", str(value["reason"]))
            return await self._load_task(conn, task_id)

    async def requeue(
        self, task_id: str, attempt: int, outcome: str, reason: str, now: float
    ) -> Task:
        R.check_outcome(outcome)
        async with self._write() as conn:
            await self._cas(conn, Q.REQUEUE, task_id, lease_attempt=attempt)
            await self._close_attempt(conn, task_id, now, outcome, reason)
            task = await self._load_task(conn, task_id)
            charged = sum(1 for h in task.history if h.outcome not in R.NOT_CHARGED)
            if charged < task.max_attempts:
                return task
            # This transaction holds the row (the UPDATE above locked it), so a second
            # unconditional write cannot race with anyone.
            error = R.encode_json(R.exhausted(charged, outcome, reason), "error")
            await conn.execute(Q.EXHAUST, {"k_id": task_id, "v_now": now, "v_error": error})
            return await self._load_task(conn, task_id)

    async def cancel(self, task_id: str, now: float, reason: str = "cancelled") -> Task:
        error = R.encode_json({"code": "cancelled", "reason": reason}, "reason")
        async with self._write() as conn:
            await self._cas(conn, Q.CANCEL, task_id, now=now, error=error)
            await self._close_attempt(conn, task_id, now, "cancelled", reason)
            return await self._load_task(conn, task_id)

    async def fail_expired(self, now: float) -> list[str]:
        from_states = [s.value for s in R.EXPIRE_FROM]
        error = R.encode_json(dict(R.DEADLINE_ERROR), "error")
        async with self._write() as conn:
            # FOR UPDATE (PostgreSQL) makes the id list exact: a row being placed right now is
            # waited for and then skipped because it no longer matches. SQLite ignores it; its
            # write lock already excludes everyone.
            ids = sorted(
                r.id
                for r in await conn.execute(
                    select(tasks.c.id)
                    .where(
                        tasks.c.state.in_(from_states),
                        tasks.c.deadline.is_not(None),
                        tasks.c.deadline <= now,
                    )
                    .with_for_update()
                )
            )
            for chunk in Q.chunks(ids):
                await conn.execute(
                    update(tasks)
                    .where(tasks.c.id.in_(chunk), tasks.c.state.in_(from_states))
                    .values(state=TaskState.FAILED.value, finished_at=now, error=error)
                )
        return ids

    async def close(self) -> None:
        if self._closed:
            return
        try:
            if self._group is not None:
                await self._group.close()
            if self._keyed is not None:
                await self._keyed.close()
            if self._reports is not None:
                await self._reports.close()
            if self._beats is not None:
                await self._beats.close()
            if self._joins is not None:
                await self._joins.close()
        finally:
            self._closed = True
            await self._engine.dispose()
