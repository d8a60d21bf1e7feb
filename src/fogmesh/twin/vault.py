"""The twin's vault: SQLite where every record's content is sealed, consent is checked at the
door and raw data expires.

On disk (``twin.db`` and its WAL) there are only: random record ids, the source name, the expiry
time, and sealed envelopes (AES-256-GCM, per-record key, record id and kind bound as associated
data). The consent table holds source names and grant times, and ``blobs`` holds sealed state
(the model, the privacy ledger). Nothing a user wrote or did is stored in the clear; the search
index is built in memory from unsealed records (``rag.py``), never written.

Deletion is real: ``secure_delete`` overwrites freed pages with zeros, and after each delete the
WAL is checkpointed and truncated and the file is vacuumed — outside any transaction, because a
VACUUM cannot run inside one (the original ran it inside one, which rolled the DELETE back).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from fogmesh.clock import Clock, WallClock
from fogmesh.errors import ConsentError, IntegrityError, StoreError, TwinError
from fogmesh.security.sealed import Sealer
from fogmesh.twin.prefs import DataSource, Record

__all__ = ["RECORD_KIND", "Vault"]

RECORD_KIND: Final = "twin-record"
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS records (
        id TEXT PRIMARY KEY, source TEXT NOT NULL, expires_at REAL NOT NULL, body BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at)",
    "CREATE INDEX IF NOT EXISTS records_source ON records (source)",
    "CREATE TABLE IF NOT EXISTS consent (source TEXT PRIMARY KEY, granted_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS blobs (name TEXT PRIMARY KEY, body BLOB NOT NULL)",
)


class Vault:
    """Sealed records with consent and retention. One connection, guarded by a lock."""

    def __init__(
        self,
        path: Path,
        sealer: Sealer,
        *,
        retention_seconds: float = 86_400.0,
        clock: Clock | None = None,
    ) -> None:
        self.path = Path(path)
        self._sealer = sealer
        self.retention_seconds = float(retention_seconds)
        self._clock = clock or WallClock()
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 before SQLite touches it: SQLite gives the WAL and shm files the
        # database file's permissions, so they are private from their first byte too.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        try:
            # isolation_level=None: we open transactions ourselves, so VACUUM and checkpoints
            # are never silently wrapped in one.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA secure_delete=ON",
                "PRAGMA temp_store=MEMORY",
                "PRAGMA synchronous=NORMAL",
            ):
                self._db.execute(pragma)
            for statement in _SCHEMA:
                self._db.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the twin vault ({exc})") from exc
        self.purge_expired()

    # -- consent ----------------------------------------------------------------------------

    def grant(self, source: DataSource) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO consent (source, granted_at) VALUES (?, ?)",
                (source.value, self._clock.time()),
            )

    def revoke(self, source: DataSource) -> int:
        """Withdraw consent and delete the source's data at once; returns rows deleted."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM consent WHERE source = ?", (source.value,))
                deleted = self._db.execute(
                    "DELETE FROM records WHERE source = ?", (source.value,)
                ).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._compact()
        return deleted

    def consented(self) -> frozenset[DataSource]:
        with self._lock:
            rows = self._db.execute("SELECT source FROM consent").fetchall()
        return frozenset(DataSource(r[0]) for r in rows if r[0] in DataSource._value2member_map_)

    def require_consent(self, source: DataSource) -> None:
        if source not in self.consented():
            raise ConsentError(
                f"no consent for {source.value}: grant it first "
                f"(fogmesh twin consent grant {source.value})",
                source=source.value,
            )

    # -- records ----------------------------------------------------------------------------

    def add(self, records: Iterable[Record], *, source: DataSource) -> int:
        """Store records of one source in one transaction: all of them or none."""
        self.require_consent(source)
        expires = self._clock.time() + self.retention_seconds
        rows = []
        for record in records:
            if record.source is not source:
                raise TwinError(f"record of {record.source.value} offered as {source.value}")
            record_id = os.urandom(16).hex()
            body = json.dumps(
                [record.timestamp, record.data], separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
            sealed = self._sealer.seal(body, record_id=record_id, kind=_kind(source))
            rows.append((record_id, source.value, expires, sealed))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO records (id, source, expires_at, body) VALUES (?, ?, ?, ?)", rows
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def records(self, source: DataSource | None = None) -> list[Record]:
        """Unexpired records (of one source or all), oldest first. A damaged or moved
        envelope is an IntegrityError naming the record id, never silently skipped."""
        now = self._clock.time()
        query = "SELECT id, source, body FROM records WHERE expires_at > ?"
        params: tuple[object, ...] = (now,)
        if source is not None:
            query += " AND source = ?"
            params = (now, source.value)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        out = [self._open(record_id, src, body) for record_id, src, body in rows]
        out.sort(key=lambda r: r.timestamp)
        return out

    def _open(self, record_id: str, source: str, body: bytes) -> Record:
        src = DataSource(source)
        try:
            plain = self._sealer.unseal(body, record_id=record_id, kind=_kind(src))
        except IntegrityError as exc:
            raise IntegrityError(f"twin record {record_id}: {exc.reason}") from exc
        timestamp, data = json.loads(plain)
        return Record(src, float(timestamp), data)

    def iter_sealed(self) -> Iterator[tuple[str, bytes]]:
        """(id, sealed envelope) of every stored record — for checks that bytes leave the file."""
        with self._lock:
            rows = self._db.execute("SELECT id, body FROM records").fetchall()
        yield from ((str(i), bytes(b)) for i, b in rows)

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT source, COUNT(*) FROM records GROUP BY source"
            ).fetchall()
        return {str(s): int(n) for s, n in rows}

    def expired_count(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM records WHERE expires_at <= ?", (self._clock.time(),)
            ).fetchone()
        return int(row[0])

    def purge_expired(self) -> int:
        """Delete every record past its retention and scrub the freed bytes from the files."""
        with self._lock:
            deleted = self._db.execute(
                "DELETE FROM records WHERE expires_at <= ?", (self._clock.time(),)
            ).rowcount
            if deleted:
                self._compact()
        return int(deleted)

    def forget(self, source: DataSource | None = None) -> int:
        """Delete all records (or one source's) now; consent is left as it is."""
        with self._lock:
            if source is None:
                deleted = self._db.execute("DELETE FROM records").rowcount
            else:
                deleted = self._db.execute(
                    "DELETE FROM records WHERE source = ?", (source.value,)
                ).rowcount
            self._compact()
        return int(deleted)

    def _compact(self) -> None:
        # Autocommit mode here: the checkpoint copies the zeroed pages into the main file and
        # truncates the WAL (which still held the old page images); VACUUM rewrites the file
        # without the free pages.
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- sealed blobs (model, ledger) -------------------------------------------------------

    def put_blob(self, name: str, data: bytes) -> None:
        sealed = self._sealer.seal(data, record_id=name, kind="twin-blob")
        with self._lock:
            self._db.execute(
                "INSERT INTO blobs (name, body) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET body = excluded.body",
                (name, sealed),
            )

    def get_blob(self, name: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM blobs WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        try:
            return self._sealer.unseal(bytes(row[0]), record_id=name, kind="twin-blob")
        except IntegrityError as exc:
            raise IntegrityError(f"twin state {name!r}: {exc.reason}") from exc

    def delete_blob(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM blobs WHERE name = ?", (name,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _kind(source: DataSource) -> str:
    return f"{RECORD_KIND}:{source.value}"
