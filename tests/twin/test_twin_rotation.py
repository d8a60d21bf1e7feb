"""Master-key rotation: everything re-sealed in one transaction; a crash leaves one whole key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from twin_helpers import START, disk_bytes
from typer.testing import CliRunner

from fogmesh.cli import app
from fogmesh.clock import ManualClock
from fogmesh.devices.emulated import preset
from fogmesh.errors import IntegrityError
from fogmesh.security.sealed import MasterKey, Sealer
from fogmesh.twin import DataSource, DigitalTwinConcierge, Persona, Record, UserPreferences
from fogmesh.twin import concierge as concierge_module
from fogmesh.twin.vault import Vault

SECRET = "Obsidian-Lantern-9031"


def _twin(root: Path, clock: ManualClock, persona: Persona) -> DigitalTwinConcierge:
    prefs = UserPreferences(enabled_sources=set(DataSource))
    twin = DigitalTwinConcierge(root, prefs, clock=clock)
    twin.ingest("conversations", [Record(DataSource.CONVERSATIONS, START, {"text": SECRET})])
    apps = persona.records[DataSource.APP_USAGE][:200]
    twin.ingest(
        "app_usage", [Record(r.source, START - 3600 + i, r.data) for i, r in enumerate(apps)]
    )
    twin.learn_now(preset("desktop"))
    twin.release(3.0, sensitivity=1.0, epsilon=0.1)
    return twin


def test_rotation_reseals_everything_and_retires_the_old_key(
    tmp_path: Path, clock: ManualClock, persona: Persona
) -> None:
    root = tmp_path / "t"
    twin = _twin(root, clock, persona)
    old = MasterKey.load(root / "twin.key")
    before = dict(twin.vault.iter_sealed())
    prediction = twin.predict(START)
    count = twin.rotate_key()
    assert count >= len(before) + 3  # records plus the model, ledger and preferences blobs
    new = MasterKey.load(root / "twin.key")
    assert new.fingerprint != old.fingerprint and not (root / "twin.key.next").exists()
    assert twin.vault.fingerprints() == {new.fingerprint}
    # the old key opens nothing any more
    for ref, envelope in twin.vault.iter_sealed():
        with pytest.raises(IntegrityError, match="unknown master key"):
            Sealer(old).unseal(envelope, record_id=ref, kind="twin-record:conversations")
    # nothing plain, and none of the old envelopes, left in the file or its WAL
    raw = disk_bytes(root / "twin.db")
    assert SECRET.encode() not in raw and b"Obsidian" not in raw
    assert not any(envelope[5:40] in raw for envelope in before.values())
    twin.close()
    again = DigitalTwinConcierge(root, clock=clock)
    assert again.ask("Obsidian Lantern")[0].chunk.text.endswith(SECRET)
    assert again.predict(START) == prediction and again.model.cycles == 1
    assert again.privacy_report()["epsilon_spent_today"] > 0
    again.close()


class _FailingSealer(Sealer):
    __slots__ = ("left",)

    def __init__(self, master: MasterKey, **kw: object) -> None:
        super().__init__(master, **kw)  # type: ignore[arg-type]
        self.left = 50

    def seal(self, plaintext: bytes, *, record_id: str, kind: str) -> bytes:
        self.left -= 1
        if self.left < 0:
            raise OSError("power cut")  # stands in for a crash half-way through
        return super().seal(plaintext, record_id=record_id, kind=kind)


def test_a_crash_before_commit_keeps_the_old_key(
    tmp_path: Path, clock: ManualClock, persona: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "t"
    twin = _twin(root, clock, persona)
    old = MasterKey.load(root / "twin.key")
    with monkeypatch.context() as patch:
        patch.setattr(concierge_module, "Sealer", _FailingSealer)
        with pytest.raises(OSError, match="power cut"):
            twin.rotate_key()
    assert twin.vault.fingerprints() == {old.fingerprint}  # not one row re-sealed
    assert MasterKey.load(root / "twin.key").fingerprint == old.fingerprint
    assert not (root / "twin.key.next").exists()
    assert twin.ask("Obsidian")[0].chunk.text.endswith(SECRET)
    twin.close()
    # a half-written next key left by a crash is discarded on open
    (root / "twin.key.next").write_bytes(b"fogmesh-key/1 garbage")
    os.chmod(root / "twin.key.next", 0o600)
    again = DigitalTwinConcierge(root, clock=clock)
    assert not (root / "twin.key.next").exists() and again.ask("Obsidian")
    again.close()


def test_a_crash_after_commit_is_finished_on_the_next_open(
    tmp_path: Path, clock: ManualClock, persona: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "t"
    twin = _twin(root, clock, persona)
    old = MasterKey.load(root / "twin.key")

    def crash(*_: object) -> None:
        raise OSError("power cut before the rename")

    with monkeypatch.context() as patch:
        patch.setattr(concierge_module.os, "replace", crash)
        with pytest.raises(OSError, match="before the rename"):
            twin.rotate_key()
    # the vault committed under the new key, twin.key is still the old one; rotating again in
    # this process first settles the pending key instead of discarding its only copy
    pending_fp = MasterKey.load(root / "twin.key.next").fingerprint
    assert twin.vault.fingerprints() == {pending_fp}
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("twin.db", "twin.db-wal", "twin.key", "twin.key.next"):
        if not (root / name).exists():
            continue
        (clone / name).write_bytes((root / name).read_bytes())
        os.chmod(clone / name, 0o600)
    twin.rotate_key()
    assert twin.ask("Obsidian")[0].chunk.text.endswith(SECRET)
    assert twin.vault.fingerprints() == {MasterKey.load(root / "twin.key").fingerprint}
    twin.close()
    root = clone  # the state as the crash left it, reopened below
    assert MasterKey.load(root / "twin.key").fingerprint == old.fingerprint
    pending = MasterKey.load(root / "twin.key.next")
    again = DigitalTwinConcierge(root, clock=clock)
    assert MasterKey.load(root / "twin.key").fingerprint == pending.fingerprint
    assert not (root / "twin.key.next").exists()
    assert again.vault.fingerprints() == {pending.fingerprint}
    assert again.ask("Obsidian")[0].chunk.text.endswith(SECRET)
    again.close()


def test_cli_rotate_key(tmp_path: Path) -> None:
    data = tmp_path / "twin"
    runner = CliRunner()

    def run(*args: str) -> dict:  # type: ignore[type-arg]
        result = runner.invoke(app, ["twin", *args, "--data-dir", str(data), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)  # type: ignore[no-any-return]

    run("init", "--timezone", "Europe/Berlin")
    chat = tmp_path / "chat.txt"
    chat.write_text(f"01/11/2026, 20:00 - Sam: {SECRET}\n")
    run("consent", "grant", "conversations")
    run("ingest", "--source", "conversations", str(chat))
    old = MasterKey.load(data / "twin.key")
    out = run("rotate-key")
    assert out["resealed"] >= 2 and MasterKey.load(data / "twin.key").fingerprint != old.fingerprint
    assert run("ask", "Obsidian")[0]["text"].endswith(SECRET)
    assert run("status")["timezone"] == "Europe/Berlin"


def test_a_failure_after_commit_keeps_the_new_key(
    tmp_path: Path, clock: ManualClock, persona: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "t"
    twin = _twin(root, clock, persona)

    def disk_full(self: object) -> None:
        raise OSError("disk full while scrubbing")

    with monkeypatch.context() as patch:
        patch.setattr(Vault, "_compact", disk_full)
        with pytest.raises(OSError, match="disk full"):
            twin.rotate_key()
    # committed under the new key: its file must survive for the next open to finish
    assert (root / "twin.key.next").exists()
    twin.close()
    again = DigitalTwinConcierge(root, clock=clock)
    assert not (root / "twin.key.next").exists()
    assert again.ask("Obsidian")[0].chunk.text.endswith(SECRET)
    again.close()
