"""The device, cluster and coordinator-value half of ``SqlStore``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from sqlalchemy import ColumnElement, Row, and_, bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fogmesh.devices.model import DeviceProfile, DeviceType
from fogmesh.errors import DeviceNotFound, FogmeshError, InvalidRequest

from . import _rules as R
from . import _statements as Q
from ._batch import Batcher
from ._sqlconn import SqlBase
from .base import ClusterRecord, DeviceRecord, DeviceStatus
from .schema import clusters, device_models, devices, kv, spent_tickets

__all__ = ["SqlDevices"]

_CLUSTER_LOCK_KEY: Final = 0x666F6763  # "fogc": advisory lock id for cluster saves on PostgreSQL
# Devices joined with their models, built once (a registration reads its batch back by id).
_DEVICES: Final = (
    select(devices, device_models.c.model_id)
    .select_from(devices.outerjoin(device_models))
    .order_by(devices.c.id, device_models.c.model_id)
)
_DEVICES_BY_IDS: Final = _DEVICES.where(devices.c.id.in_(bindparam("ids", expanding=True)))


class _Spend(NamedTuple):
    spent: dict[str, float]  # checked
    now: float
    holders: dict[str, str]  # checked: some of the spent ids → the device that spent them


class _Beat(NamedTuple):
    device_id: str
    now: float
    profile: str | None  # JSON, already checked
    device_type: str | None
    reload: bool = True  # the caller wants the record back


class _Upsert(NamedTuple):
    device_id: str
    device_type: str
    profile: str  # JSON, checked
    labels: str | None  # JSON, checked; None keeps what is stored
    now: float


class SqlDevices(SqlBase):
    """Devices with their deployed models, clusters, coordinator values."""

    def __init__(self, engine: AsyncEngine, *, batch_heartbeats: bool = True) -> None:
        super().__init__(engine)
        # Thousands of devices heartbeat every few seconds; one transaction per beat would
        # cap the fleet at the disk's fsync rate.
        self._beats: Batcher[_Beat, DeviceRecord | None] | None = (
            # Written behind the coordinator's memory (nobody waits on it): gather 10 ms' worth.
            Batcher(self._apply_heartbeats, name="heartbeats", linger=0.01)
            if batch_heartbeats
            else None
        )
        # A fleet reconnecting after a coordinator restart registers all at once; a connect
        # storm of new devices also spends a join token each. Both kinds share commits.
        self._joins: Batcher[_Upsert | _Spend, DeviceRecord | None] | None = (
            Batcher(self._apply_joins, name="registrations") if batch_heartbeats else None
        )
        self._upserts_sql: dict[bool, Any] = {}  # with labels? → statement (_upsert_statement)
        upsert = self._insert(spent_tickets)
        # An id spent before keeps its first holder (or its lack of one: refused to everyone).
        self._spend_sql = upsert.on_conflict_do_update(
            index_elements=["ticket_id"], set_={"expires_at": upsert.excluded.expires_at}
        )

    # -- devices ----------------------------------------------------------------------------
    async def _load_devices(
        self,
        conn: AsyncConnection,
        where: ColumnElement[bool] | None = None,
        *,
        ids: Sequence[str] | None = None,
    ) -> list[DeviceRecord]:
        """Devices with their models: those matching ``where``, or the ``ids`` (through a
        statement built once: registrations and heartbeats read devices back by id)."""
        params: dict[str, Any] = {}
        if ids is not None:
            query = _DEVICES_BY_IDS
            params["ids"] = list(ids)
        else:
            query = _DEVICES
            if where is not None:
                query = query.where(where)
        out: list[DeviceRecord] = []
        current: Row[Any] | None = None
        models: list[str] = []
        for r in await conn.execute(query, params):
            if current is None or r.id != current.id:
                if current is not None:
                    out.append(Q.row_device(current, tuple(models)))
                current, models = r, []
            if r.model_id is not None:
                models.append(r.model_id)
        if current is not None:
            out.append(Q.row_device(current, tuple(models)))
        return out

    async def _device(self, conn: AsyncConnection, device_id: str) -> DeviceRecord:
        found = await self._load_devices(conn, devices.c.id == device_id)
        if not found:
            raise DeviceNotFound(f"no device {device_id}", device_id=device_id)
        return found[0]

    async def upsert_device(
        self, profile: DeviceProfile, now: float, *, labels: Mapping[str, str] | None = None
    ) -> DeviceRecord:
        R.check_profile(profile)
        new_labels = None if labels is None else R.check_labels(labels)
        row = _Upsert(
            profile.device_id,
            DeviceType(profile.device_type).value,
            R.encode_json(profile.to_dict(), "profile"),
            None if new_labels is None else R.encode_json(new_labels, "labels"),
            now,
        )
        outcome = await self._join(row)
        assert outcome is not None
        return outcome

    async def _join(self, item: _Upsert | _Spend) -> DeviceRecord | None:
        if self._joins is not None:
            return await self._joins.submit(item)
        outcome = (await self._apply_joins([item]))[0]
        if isinstance(outcome, FogmeshError):
            raise outcome
        return outcome

    def _upsert_statement(self, with_labels: bool) -> Any:
        """INSERT … ON CONFLICT DO UPDATE for a registration, built once per store."""
        stmt = self._upserts_sql.get(with_labels)
        if stmt is None:
            base = self._insert(devices)
            updates: dict[str, Any] = {
                "device_type": base.excluded.device_type,
                "profile": base.excluded.profile,
                "last_heartbeat": base.excluded.last_heartbeat,
                "status": Q.revived_status(),
            }
            if with_labels:
                updates["labels"] = base.excluded.labels
            stmt = self._upserts_sql[with_labels] = base.on_conflict_do_update(
                index_elements=["id"], set_=updates
            )
        return stmt

    async def _apply_joins(
        self, items: Sequence[_Upsert | _Spend]
    ) -> list[DeviceRecord | FogmeshError | None]:
        """Spend join tickets and register (or take back) devices, all in one transaction."""
        spends = [i for i in items if isinstance(i, _Spend)]
        rows = [i for i in items if isinstance(i, _Upsert)]
        async with self._write() as conn:
            if spends:
                await self._spend(conn, spends)
            records = await self._upsert(conn, rows) if rows else {}
        return [records[i.device_id] if isinstance(i, _Upsert) else None for i in items]

    async def _upsert(
        self, conn: AsyncConnection, rows: Sequence[_Upsert]
    ) -> dict[str, DeviceRecord]:
        """Register (or take back) devices in arrival order; their records, by id."""
        for with_labels in (True, False):
            batch = [r for r in rows if (r.labels is not None) is with_labels]
            if not batch:
                continue
            stmt = self._upsert_statement(with_labels)
            await conn.execute(
                stmt,
                [
                    {
                        "id": r.device_id,
                        "device_type": r.device_type,
                        "status": DeviceStatus.READY.value,
                        "profile": r.profile,
                        "labels": r.labels if r.labels is not None else "{}",
                        "registered_at": r.now,
                        "last_heartbeat": r.now,
                    }
                    for r in batch
                ],
            )
        records: dict[str, DeviceRecord] = {}
        for chunk in Q.chunks(sorted({r.device_id for r in rows})):
            for record in await self._load_devices(conn, ids=chunk):
                records[record.device_id] = record
        return records

    async def heartbeat(
        self, device_id: str, now: float, profile: DeviceProfile | None = None
    ) -> DeviceRecord:
        record = await self._heartbeat(_beat(device_id, now, profile, reload=True))
        assert record is not None
        return record

    async def note_heartbeat(
        self, device_id: str, now: float, profile: DeviceProfile | None = None
    ) -> None:
        await self._heartbeat(_beat(device_id, now, profile, reload=False))

    async def _heartbeat(self, beat: _Beat) -> DeviceRecord | None:
        if self._beats is not None:
            return await self._beats.submit(beat)
        outcome = (await self._apply_heartbeats([beat]))[0]
        if isinstance(outcome, FogmeshError):
            raise outcome
        return outcome

    async def _apply_heartbeats(
        self, beats: Sequence[_Beat]
    ) -> list[DeviceRecord | FogmeshError | None]:
        with_profile = [b for b in beats if b.profile is not None]
        bare = [b for b in beats if b.profile is None]
        async with self._write() as conn:
            ids = sorted({b.device_id for b in beats})
            known: set[str] = set()
            for chunk in Q.chunks(ids):
                known.update(
                    r.id
                    for r in await conn.execute(select(devices.c.id).where(devices.c.id.in_(chunk)))
                )
            stmt = update(devices).where(devices.c.id == bindparam("k_id"))
            revive = {"last_heartbeat": bindparam("v_now"), "status": Q.revived_status()}
            with_profile = [b for b in with_profile if b.device_id in known]
            bare = [b for b in bare if b.device_id in known]
            if with_profile:
                await conn.execute(
                    stmt.values(
                        **revive, profile=bindparam("v_profile"), device_type=bindparam("v_type")
                    ),
                    [
                        {"k_id": b.device_id, "v_now": b.now, "v_profile": b.profile,
                         "v_type": b.device_type}
                        for b in with_profile
                    ],
                )  # fmt: skip
            if bare:
                await conn.execute(
                    stmt.values(**revive),
                    [{"k_id": b.device_id, "v_now": b.now} for b in bare],
                )
            records: dict[str, DeviceRecord] = {}
            wanted = sorted({b.device_id for b in beats if b.reload} & known)
            for chunk in Q.chunks(wanted):
                for record in await self._load_devices(conn, ids=chunk):
                    records[record.device_id] = record
        return [
            DeviceNotFound(f"no device {b.device_id}", device_id=b.device_id)
            if b.device_id not in known
            else records[b.device_id]
            if b.reload
            else None
            for b in beats
        ]

    async def set_device_status(self, device_id: str, status: DeviceStatus) -> DeviceRecord:
        status = DeviceStatus(status)
        async with self._write() as conn:
            result = await conn.execute(
                update(devices).where(devices.c.id == device_id).values(status=status.value)
            )
            if result.rowcount != 1:
                raise DeviceNotFound(f"no device {device_id}", device_id=device_id)
            return await self._device(conn, device_id)

    async def mark_lost(self, stale_before: float) -> list[str]:
        losable = [s.value for s in R.LOSABLE]
        async with self._write() as conn:
            ids = sorted(
                r.id
                for r in await conn.execute(
                    select(devices.c.id)
                    .where(devices.c.status.in_(losable), devices.c.last_heartbeat < stale_before)
                    .with_for_update()
                )
            )
            for chunk in Q.chunks(ids):
                await conn.execute(
                    update(devices)
                    .where(devices.c.id.in_(chunk), devices.c.status.in_(losable))
                    .values(status=DeviceStatus.LOST.value)
                )
        return ids

    async def get_device(self, device_id: str) -> DeviceRecord:
        async with self._read() as conn:
            return await self._device(conn, device_id)

    async def list_devices(self, status: DeviceStatus | None = None) -> list[DeviceRecord]:
        where = None if status is None else devices.c.status == DeviceStatus(status).value
        async with self._read() as conn:
            return await self._load_devices(conn, where)

    async def remove_device(self, device_id: str) -> None:
        async with self._write() as conn:
            result = await conn.execute(delete(devices).where(devices.c.id == device_id))
            if result.rowcount != 1:
                raise DeviceNotFound(f"no device {device_id}", device_id=device_id)

    async def _require_device(self, conn: AsyncConnection, device_id: str) -> None:
        found = (await conn.execute(select(devices.c.id).where(devices.c.id == device_id))).first()
        if found is None:
            raise DeviceNotFound(f"no device {device_id}", device_id=device_id)

    async def add_model(self, device_id: str, model_id: str, now: float) -> None:
        R.check_model_id(model_id)
        stmt = self._insert(device_models).values(
            device_id=device_id, model_id=model_id, deployed_at=now
        )
        async with self._write() as conn:
            await self._require_device(conn, device_id)
            await conn.execute(
                stmt.on_conflict_do_nothing(index_elements=["device_id", "model_id"])
            )

    async def remove_model(self, device_id: str, model_id: str) -> None:
        async with self._write() as conn:
            await self._require_device(conn, device_id)
            await conn.execute(
                delete(device_models).where(
                    and_(
                        device_models.c.device_id == device_id, device_models.c.model_id == model_id
                    )
                )
            )

    # -- clusters and coordinator state ----------------------------------------------------
    async def save_clusters(self, new: Sequence[ClusterRecord], now: float) -> None:
        new = list(new)
        R.check_clusters(new)
        rows = [
            {
                "id": c.cluster_id,
                "head": c.head,
                "term": c.term,
                "members": R.encode_json(list(c.members), "members"),
                "updated_at": now,
            }
            for c in new
        ]
        async with self._write() as conn:
            if not self._sqlite:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CLUSTER_LOCK_KEY}
                )
            stored = {c.cluster_id: c for c in await self._clusters(conn)}
            for c in new:
                R.check_cluster_term(c, stored.get(c.cluster_id))
            await conn.execute(delete(clusters))
            if rows:
                await conn.execute(clusters.insert(), rows)

    async def _clusters(self, conn: AsyncConnection) -> list[ClusterRecord]:
        result = await conn.execute(select(clusters).order_by(clusters.c.id))
        return [
            ClusterRecord(
                cluster_id=r.id,
                members=tuple(R.decode_json(r.members)),
                head=r.head,
                term=r.term,
            )
            for r in result
        ]

    async def load_clusters(self) -> list[ClusterRecord]:
        async with self._read() as conn:
            return await self._clusters(conn)

    async def spend_tickets(
        self,
        spent: Mapping[str, float],
        now: float,
        *,
        holders: Mapping[str, str] | None = None,
    ) -> None:
        checked = R.check_spent(spent)
        await self._join(_Spend(checked, now, R.check_holders(holders, checked)))

    async def _spend(self, conn: AsyncConnection, items: Sequence[_Spend]) -> None:
        rows: dict[str, float] = {}
        holders: dict[str, str] = {}
        for item in items:
            rows.update(item.spent)
            for ticket_id, holder in item.holders.items():
                holders.setdefault(ticket_id, holder)  # the first in arrival order wins
        await conn.execute(
            delete(spent_tickets).where(
                spent_tickets.c.expires_at < max(item.now for item in items)
            )
        )
        if rows:
            await conn.execute(
                self._spend_sql,
                [
                    {"ticket_id": k, "expires_at": v, "holder": holders.get(k)}
                    for k, v in rows.items()
                ],
            )

    async def spent_tickets(self, now: float) -> dict[str, float]:
        query = select(spent_tickets.c.ticket_id, spent_tickets.c.expires_at).where(
            spent_tickets.c.expires_at >= now
        )
        async with self._read() as conn:
            return {r.ticket_id: r.expires_at for r in await conn.execute(query)}

    async def ticket_holders(self, now: float) -> dict[str, str]:
        query = select(spent_tickets.c.ticket_id, spent_tickets.c.holder).where(
            spent_tickets.c.expires_at >= now, spent_tickets.c.holder.is_not(None)
        )
        async with self._read() as conn:
            return {r.ticket_id: r.holder for r in await conn.execute(query)}

    async def get_value(self, key: str) -> Any:
        async with self._read() as conn:
            row = (await conn.execute(select(kv.c.value).where(kv.c.key == key))).first()
        return None if row is None else R.decode_json(row.value)

    async def set_value(self, key: str, value: Any) -> None:
        R.check_key(key)
        stmt = self._insert(kv).values(key=key, value=R.encode_json(value, "value"))
        async with self._write() as conn:
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["key"], set_={"value": stmt.excluded.value}
                )
            )


def _beat(device_id: str, now: float, profile: DeviceProfile | None, *, reload: bool) -> _Beat:
    if profile is None:
        return _Beat(device_id, now, None, None, reload)
    R.check_profile(profile)
    if profile.device_id != device_id:
        raise InvalidRequest("heartbeat profile is for another device", field="profile")
    data = R.encode_json(profile.to_dict(), "profile")
    return _Beat(device_id, now, data, DeviceType(profile.device_type).value, reload)
