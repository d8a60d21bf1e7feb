"""The twin's vault: SQLite where every record's content is sealed, consent is checked at the
door and raw data expires.

On disk (``twin.db`` and its WAL) there are only: random record ids, the source name, the expiry
time, and sealed envelopes (AES-256-GCM, per-record key, record id and kind bound as associated
data). The consent table holds source names and grant times, and ``blobs`` holds sealed state
(the model, the privacy ledger). Nothing a user wrote or did is stored in the clear; the search
index is built in memory from unsealed records (``rag.py``), never written.

Each record also carries ``seq``, the vault's ingestion sequence number: monotonic and never
reused (a counter row, not the rowid, which SQLite reuses after the highest row is deleted). The
learner's watermark follows it, so records imported late — older than what was already learnt
— are still learnt, and each exactly once. It is scheduling metadata in the clear, like the
expiry time: it reveals ingestion order, which the rowid revealed anyway.

Embedding vectors (optional, ``rag.py``) live in ``vectors``, sealed like the records — a vector
is a lossy copy of its text and inversion attacks recover much of it, so it is personal data —
and bound to their record by id, kind and a foreign key: deleting a record (retention, revoke,
forget) deletes its vector in the same statement.

``rotate()`` re-seals every record, vector and blob under a new master key in one transaction;
the concierge keeps the old key file until that commits (see ``concierge.rotate_key``).

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

__all__ = ["BLOB_KIND", "RECORD_KIND", "VECTOR_KIND", "Vault"]

RECORD_KIND: Final = "twin-record"
VECTOR_KIND: Final = "twin-vector"
BLOB_KIND: Final = "twin-blob"
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS records (
        id TEXT PRIMARY KEY, source TEXT NOT NULL, expires_at REAL NOT NULL, body BLOB NOT NULL,
        seq INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at)",
    "CREATE INDEX IF NOT EXISTS records_source ON records (source)",
    "CREATE TABLE IF NOT EXISTS consent (source TEXT PRIMARY KEY, granted_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS blobs (name TEXT PRIMARY KEY, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS vectors (
        id TEXT PRIMARY KEY REFERENCES records (id) ON DELETE CASCADE,
        model TEXT NOT NULL, body BLOB NOT NULL)""",
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
                "PRAGMA foreign_keys=ON",  # a record's vector goes when the record goes
            ):
                self._db.execute(pragma)
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the twin vault ({exc})") from exc
        self.purge_expired()

    def _migrate(self) -> None:
        # Vaults made before ingestion sequence numbers: number their rows in insertion (rowid)
        # order, once, and start the counter after them.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(records)")}
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if "seq" not in columns:
                self._db.execute("ALTER TABLE records ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
                self._db.execute("UPDATE records SET seq = rowid")
            self._db.execute("CREATE INDEX IF NOT EXISTS records_seq ON records (source, seq)")
            self._db.execute(
                "INSERT OR IGNORE INTO counters (name, value) "
                "SELECT 'seq', COALESCE(MAX(seq), 0) FROM records"
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @property
    def sealer(self) -> Sealer:
        return self._sealer

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
        """Store records of one source in one transaction: all of them or none. Each gets the
        next ingestion sequence number."""
        self.require_consent(source)
        expires = self._clock.time() + self.retention_seconds
        rows: list[tuple[str, str, float, bytes, int]] = []
        for record in records:
            if record.source is not source:
                raise TwinError(f"record of {record.source.value} offered as {source.value}")
            record_id = os.urandom(16).hex()
            body = json.dumps(
                [record.timestamp, record.data], separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
            sealed = self._sealer.seal(body, record_id=record_id, kind=_kind(source))
            rows.append((record_id, source.value, expires, sealed, 0))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Numbered inside the write transaction, so two writers never share a number.
                row = self._db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
                first = int(row[0]) + 1
                numbered = [(*r[:4], first + i) for i, r in enumerate(rows)]
                self._db.executemany(
                    "INSERT INTO records (id, source, expires_at, body, seq) "
                    "VALUES (?, ?, ?, ?, ?)",
                    numbered,
                )
                self._db.execute(
                    "UPDATE counters SET value = ? WHERE name = 'seq'", (first + len(rows) - 1,)
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def records(
        self, source: DataSource | None = None, *, after_seq: int | None = None
    ) -> list[Record]:
        """Unexpired records (of one source or all; with ``after_seq``, only those ingested
        after that sequence number), oldest first. A damaged or moved envelope is an
        IntegrityError naming the record id, never silently skipped."""
        query = "SELECT id, source, body, seq FROM records WHERE expires_at > ?"
        params: list[object] = [self._clock.time()]
        if source is not None:
            query += " AND source = ?"
            params.append(source.value)
        if after_seq is not None:
            query += " AND seq > ?"
            params.append(int(after_seq))
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        out = [self._open(record_id, src, body, seq) for record_id, src, body, seq in rows]
        out.sort(key=lambda r: r.timestamp)
        return out

    def _open(self, record_id: str, source: str, body: bytes, seq: int) -> Record:
        src = DataSource(source)
        try:
            plain = self._sealer.unseal(body, record_id=record_id, kind=_kind(src))
        except IntegrityError as exc:
            raise IntegrityError(f"twin record {record_id}: {exc.reason}") from exc
        timestamp, data = json.loads(plain)
        return Record(src, float(timestamp), data, seq=int(seq), ref=record_id)

    # -- embedding vectors (sealed; see the module docstring) ------------------------------

    def put_vectors(self, model: str, vectors: Iterable[tuple[str, bytes]]) -> int:
        """Seal and store ``(record id, vector bytes)`` pairs for ``model`` in one transaction.
        A record deleted meanwhile is skipped (its vector would have nothing to belong to)."""
        sealed = [
            (ref, model, self._sealer.seal(raw, record_id=ref, kind=_vector_kind(model)))
            for ref, raw in vectors
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors (id, model, body) "
                    "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM records WHERE id = ?)",
                    ((ref, m, body, ref) for ref, m, body in sealed),
                )
                stored = self._db.total_changes - before
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return stored

    def vectors(self, model: str) -> dict[str, bytes]:
        """Unsealed vector bytes of ``model`` by record id (unexpired records only)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT v.id, v.body FROM vectors v JOIN records r ON r.id = v.id "
                "WHERE v.model = ? AND r.expires_at > ?",
                (model, self._clock.time()),
            ).fetchall()
        out: dict[str, bytes] = {}
        for ref, body in rows:
            try:
                out[ref] = self._sealer.unseal(body, record_id=ref, kind=_vector_kind(model))
            except IntegrityError as exc:
                raise IntegrityError(f"twin vector {ref}: {exc.reason}") from exc
        return out

    def vector_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def drop_vectors(self, *, keep_model: str | None = None) -> int:
        """Delete vectors of every model but ``keep_model`` (all of them without it)."""
        with self._lock:
            deleted = self._db.execute(
                "DELETE FROM vectors WHERE model IS NOT ?", (keep_model,)
            ).rowcount
            if deleted:
                self._compact()
        return int(deleted)

    # -- key rotation -----------------------------------------------------------------------

    def fingerprints(self) -> set[bytes]:
        """The master-key fingerprints of every sealed envelope (bytes 1–4 of each)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT substr(body, 2, 4) FROM records "
                "UNION SELECT DISTINCT substr(body, 2, 4) FROM vectors "
                "UNION SELECT DISTINCT substr(body, 2, 4) FROM blobs"
            ).fetchall()
        return {bytes(r[0]) for r in rows}

    def rotate(self, new: Sealer) -> int:
        """Re-seal every record, vector and blob with ``new`` in one transaction, then use it.

        Everything is opened with the current sealer first; one envelope that fails to open
        aborts the whole rotation with nothing changed. The old envelopes' bytes are scrubbed
        from the file and WAL afterwards. Returns how many envelopes were re-sealed."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = 0
                records = self._db.execute("SELECT id, source, body FROM records").fetchall()
                for ref, src, body in records:
                    kind = _kind(DataSource(src))
                    fresh = new.seal(self._unseal(body, ref, kind), record_id=ref, kind=kind)
                    self._db.execute("UPDATE records SET body = ? WHERE id = ?", (fresh, ref))
                    count += 1
                vectors = self._db.execute("SELECT id, model, body FROM vectors").fetchall()
                for ref, model, body in vectors:
                    kind = _vector_kind(model)
                    fresh = new.seal(self._unseal(body, ref, kind), record_id=ref, kind=kind)
                    self._db.execute("UPDATE vectors SET body = ? WHERE id = ?", (fresh, ref))
                    count += 1
                blobs = self._db.execute("SELECT name, body FROM blobs").fetchall()
                for name, body in blobs:
                    fresh = new.seal(
                        self._unseal(body, name, BLOB_KIND), record_id=name, kind=BLOB_KIND
                    )
                    self._db.execute("UPDATE blobs SET body = ? WHERE name = ?", (fresh, name))
                    count += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._sealer = new
            self._compact()
        return count

    def use_sealer(self, sealer: Sealer) -> None:
        with self._lock:
            self._sealer = sealer

    def _unseal(self, body: bytes, ref: str, kind: str) -> bytes:
        try:
            return self._sealer.unseal(bytes(body), record_id=ref, kind=kind)
        except IntegrityError as exc:
            raise IntegrityError(f"cannot re-seal {kind} {ref}: {exc.reason}") from exc

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
        sealed = self._sealer.seal(data, record_id=name, kind=BLOB_KIND)
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
            return self._sealer.unseal(bytes(row[0]), record_id=name, kind=BLOB_KIND)
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


def _vector_kind(model: str) -> str:
    return f"{VECTOR_KIND}:{model}"
