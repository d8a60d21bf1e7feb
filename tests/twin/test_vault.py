"""The vault: nothing personal on disk, consent at the door, retention that really deletes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from twin_helpers import START, disk_bytes

from fogmesh.clock import ManualClock
from fogmesh.errors import ConsentError, IntegrityError, TwinError
from fogmesh.security.sealed import Sealer
from fogmesh.twin import DataSource, Record
from fogmesh.twin.vault import Vault

SECRETS = ("Aardvark-Zebra-7731", "mrs.hudson@bakerstreet.example", "Quokka Delivery Co")


def _chats(n: int = 3, t: float = START) -> list[Record]:
    return [
        Record(DataSource.CONVERSATIONS, t + i, {"sender": "Sam", "text": SECRETS[i % 3]})
        for i in range(n)
    ]


def test_no_plaintext_reaches_the_files(vault: Vault, tmp_path: Path) -> None:
    vault.grant(DataSource.CONVERSATIONS)
    vault.add(_chats(30), source=DataSource.CONVERSATIONS)
    # read back through the vault first, so any page cache spill has happened
    assert {r.data["text"] for r in vault.records()} == set(SECRETS)
    raw = disk_bytes(tmp_path / "twin.db")
    assert len(raw) > 4096
    for secret in SECRETS:
        assert secret.encode() not in raw
        assert secret.encode("utf-16-le") not in raw
    assert b"Sam" not in raw


def test_consent_is_required_and_nothing_is_stored_without_it(vault: Vault) -> None:
    with pytest.raises(ConsentError, match="conversations"):
        vault.add(_chats(), source=DataSource.CONVERSATIONS)
    assert vault.counts() == {}


def test_revoke_deletes_the_source_at_once_and_scrubs_bytes(vault: Vault, tmp_path: Path) -> None:
    vault.grant(DataSource.CONVERSATIONS)
    vault.grant(DataSource.APP_USAGE)
    vault.add(_chats(5), source=DataSource.CONVERSATIONS)
    vault.add([Record(DataSource.APP_USAGE, START, {"app": "maps"})], source=DataSource.APP_USAGE)
    sealed = [body for _, body in vault.iter_sealed()]
    assert vault.revoke(DataSource.CONVERSATIONS) == 5
    assert vault.counts() == {"app_usage": 1}
    assert DataSource.CONVERSATIONS not in vault.consented()
    raw = disk_bytes(tmp_path / "twin.db")
    gone = [body for body in sealed if body[20:52] not in raw]
    assert len(gone) == 5  # the five conversation envelopes; the app record stays
    with pytest.raises(ConsentError):
        vault.add(_chats(), source=DataSource.CONVERSATIONS)


def test_retention_purge_deletes_rows_and_their_bytes(
    vault: Vault, clock: ManualClock, tmp_path: Path
) -> None:
    vault.grant(DataSource.CONVERSATIONS)
    vault.add(_chats(20), source=DataSource.CONVERSATIONS)
    envelopes = [body for _, body in vault.iter_sealed()]
    raw = disk_bytes(tmp_path / "twin.db")
    assert all(body[20:52] in raw for body in envelopes)
    clock.advance(1800)
    vault.add(_chats(2, START + 100), source=DataSource.CONVERSATIONS)  # stored later
    clock.advance(1801)  # first batch is now past its hour, the second is not
    assert vault.expired_count() == 20
    assert len(vault.records()) == 2  # expired rows are never returned, even before a purge
    assert vault.purge_expired() == 20
    assert vault.expired_count() == 0
    assert vault.counts() == {"conversations": 2}
    raw = disk_bytes(tmp_path / "twin.db")
    assert not [body for body in envelopes if body[20:52] in raw]


def test_purge_runs_on_open(tmp_path: Path, sealer: Sealer, clock: ManualClock) -> None:
    first = Vault(tmp_path / "v.db", sealer, retention_seconds=3600, clock=clock)
    first.grant(DataSource.CONVERSATIONS)
    first.add(_chats(4), source=DataSource.CONVERSATIONS)
    first.close()
    clock.advance(3601)
    db = sqlite3.connect(tmp_path / "v.db")
    assert db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 4
    db.close()
    second = Vault(tmp_path / "v.db", sealer, retention_seconds=3600, clock=clock)
    db = sqlite3.connect(tmp_path / "v.db")
    assert db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    db.close()
    second.close()


def test_a_damaged_envelope_is_an_integrity_error(vault: Vault, tmp_path: Path) -> None:
    vault.grant(DataSource.CONVERSATIONS)
    vault.add(_chats(1), source=DataSource.CONVERSATIONS)
    (record_id, body) = next(vault.iter_sealed())
    flipped = bytearray(body)
    flipped[-1] ^= 1
    db = sqlite3.connect(tmp_path / "twin.db")
    db.execute("UPDATE records SET body = ? WHERE id = ?", (bytes(flipped), record_id))
    db.commit()
    db.close()
    with pytest.raises(IntegrityError, match=record_id):
        vault.records()


def test_a_record_moved_to_another_source_fails(vault: Vault, tmp_path: Path) -> None:
    vault.grant(DataSource.CONVERSATIONS)
    vault.add(_chats(1), source=DataSource.CONVERSATIONS)
    db = sqlite3.connect(tmp_path / "twin.db")
    db.execute("UPDATE records SET source = 'app_usage'")
    db.commit()
    db.close()
    with pytest.raises(IntegrityError):
        vault.records()


def test_a_batch_is_all_or_nothing(vault: Vault) -> None:
    vault.grant(DataSource.CONVERSATIONS)
    batch = [*_chats(3), Record(DataSource.APP_USAGE, START, {"app": "x"})]
    with pytest.raises(TwinError, match="offered as conversations"):
        vault.add(batch, source=DataSource.CONVERSATIONS)
    assert vault.counts() == {}


def test_sealed_blobs_round_trip_and_are_not_plaintext(vault: Vault, tmp_path: Path) -> None:
    vault.put_blob("model", b"Aardvark-Zebra-7731 weights")
    assert vault.get_blob("model") == b"Aardvark-Zebra-7731 weights"
    assert b"Aardvark" not in disk_bytes(tmp_path / "twin.db")
    assert vault.get_blob("missing") is None


def test_database_file_is_private(vault: Vault, tmp_path: Path) -> None:
    assert (tmp_path / "twin.db").stat().st_mode & 0o077 == 0


def test_wal_and_shm_are_private_too(vault: Vault, tmp_path: Path) -> None:
    vault.grant(DataSource.CONVERSATIONS)
    vault.add(_chats(2), source=DataSource.CONVERSATIONS)
    wal = tmp_path / "twin.db-wal"
    assert wal.exists()  # WAL mode, not yet checkpointed
    for path in (wal, tmp_path / "twin.db-shm"):
        assert path.stat().st_mode & 0o077 == 0, path.name
