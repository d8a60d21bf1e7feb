"""``DigitalTwinConcierge``: the seed's on-device twin — vault, consent, retention, learner,
privacy and mini-RAG behind one object.

Files in ``data_dir`` (created 0700): ``twin.key`` (the vault's master key, a 0600 key file),
``twin.db`` (+ WAL; only sealed content). On a phone the master key would live in the OS keystore
(Android Keystore / iOS Keychain, hardware-backed); the 0600 file emulates it, so anyone who can
read the data directory as the owner can read the twin.

Key rotation (``rotate_key``) writes the new key to ``twin.key.next`` first, re-seals everything
in one vault transaction, and only then renames it over ``twin.key``. A crash before the commit
leaves the vault under the old key (the ``.next`` file is discarded on the next open); a crash
between the commit and the rename is finished on the next open, which finds the vault sealed
under the ``.next`` key. Both keys are never needed at once after an open.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from fogmesh.clock import Clock, WallClock
from fogmesh.devices.model import DeviceProfile
from fogmesh.errors import KeyFileError
from fogmesh.mobile import PowerMode, ResourcePolicy, evaluate
from fogmesh.security.sealed import MasterKey, Sealer
from fogmesh.twin.elevation import Contribution, ElevationSink, elevate
from fogmesh.twin.embeddings import Embedder, default_embedder
from fogmesh.twin.learner import LearningCycle, TwinModel, learn
from fogmesh.twin.prefs import DataSource, Record, UserPreferences, parse_source, zone
from fogmesh.twin.privacy import PrivacyAccountant
from fogmesh.twin.rag import Chunk, Hit, KnowledgeBase
from fogmesh.twin.sources import ImportReport, parse_file
from fogmesh.twin.vault import Vault

__all__ = ["DigitalTwinConcierge"]

KEY_FILE: Final = "twin.key"
NEXT_KEY_FILE: Final = "twin.key.next"
DB_FILE: Final = "twin.db"
_MODEL: Final = "model"
_LEDGER: Final = "privacy-ledger"
_PREFS: Final = "preferences"
# Sources the owner revoked: preferences passed by code (the seed example passes the same ones
# at every start) never grant them again; only an explicit ``grant_consent`` does.
_REVOKED: Final = "revoked_sources"
_PSEUDONYM: Final = "pseudonym"
_DEFERRING_MODES: Final = (PowerMode.CRITICAL, PowerMode.POWER_SAVE)


def _chunk(record: Record) -> Chunk | None:
    data = record.data
    if record.source is DataSource.CONVERSATIONS:
        text = f"{data.get('sender', '')}: {data.get('text', '')}"
    elif record.source is DataSource.CALENDAR:
        text = f"{data.get('summary', '')} {data.get('location', '')}".strip()
    elif record.source is DataSource.PURCHASES:
        text = f"{data.get('merchant', '')} {data.get('category', '')} {data.get('amount', '')}"
    else:
        return None
    return Chunk(text, record.source.value, record.timestamp)


class DigitalTwinConcierge:
    """An owner's private twin. ``preferences.enabled_sources`` are granted on construction;
    consent given or revoked later (``grant_consent``/``revoke_consent``) is kept in the vault.

    ``embedder`` turns on hybrid search with that model (tests pass a small deterministic one);
    without it, ``preferences.embeddings`` loads the real one (``embeddings.py``) the first time
    the knowledge base is built."""

    def __init__(
        self,
        data_dir: Path,
        preferences: UserPreferences | None = None,
        *,
        clock: Clock | None = None,
        policy: ResourcePolicy | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._clock = clock or WallClock()
        self._policy = policy or ResourcePolicy()
        self._embedder = embedder
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        key_path = self.data_dir / KEY_FILE
        # A vault without its key is unreadable: say so rather than mint a key that cannot open it.
        existing = (self.data_dir / DB_FILE).exists()
        master = MasterKey.load(key_path) if existing else MasterKey.load_or_create(key_path)
        self.vault = self._open_vault(master)
        raw = self.vault.get_blob(_PREFS)
        if preferences is None and raw is not None:
            preferences = UserPreferences(**json.loads(raw))
        preferences = preferences or UserPreferences()
        revoked = self._revoked()
        if preferences.enabled_sources & revoked:
            preferences = dataclasses.replace(
                preferences, enabled_sources=preferences.enabled_sources - revoked
            )
        self.preferences = preferences
        self.vault.retention_seconds = self.preferences.retention_seconds
        self._save_preferences()
        for source in self.preferences.enabled_sources:
            self.vault.grant(source)
        self.vault.purge_expired()
        ledger = json.loads(self.vault.get_blob(_LEDGER) or b"[]")
        self.privacy = PrivacyAccountant(
            self.preferences.privacy_mode, clock=self._clock, ledger=ledger
        )
        # The owner's zone, resolved now: the learner reads local hours and weekdays in it.
        self.timezone = self.preferences.zone_name()
        self.tz = zone(self.timezone)
        blob = self.vault.get_blob(_MODEL)
        self.model = TwinModel.from_bytes(blob, self.tz) if blob is not None else TwinModel(self.tz)
        self._kb: KnowledgeBase | None = None
        self._timer: asyncio.Task[None] | None = None

    def _open_vault(self, master: MasterKey) -> Vault:
        """Open the vault, first settling a key rotation a crash interrupted (module docs)."""
        pending = self.data_dir / NEXT_KEY_FILE
        if not pending.exists():
            return Vault(self.data_dir / DB_FILE, Sealer(master), clock=self._clock)
        try:
            new = MasterKey.load(pending)
        except KeyFileError:
            new = None  # half-written: the rotation cannot have committed with it
        previous = [new] if new is not None else []
        vault = Vault(self.data_dir / DB_FILE, Sealer(master, previous=previous), clock=self._clock)
        found = vault.fingerprints()
        if new is not None and new.fingerprint in found and master.fingerprint not in found:
            os.replace(pending, self.data_dir / KEY_FILE)  # committed: finish the rename
            _fsync_dir(self.data_dir)
            vault.use_sealer(Sealer(new))
        else:
            pending.unlink()  # never committed: the old key stays
            vault.use_sealer(Sealer(master))
        return vault

    def rotate_key(self) -> int:
        """Re-seal everything under a fresh master key; returns how many envelopes were
        re-sealed. The old key stays in ``twin.key`` until the re-sealing has committed."""
        pending = self.data_dir / NEXT_KEY_FILE
        if pending.exists():
            # A rotation of this process failed at its rename: the vault may already be under
            # that key, and this file its only copy. Settle it before starting another.
            self.vault.close()
            self.vault = self._open_vault(MasterKey.load(self.data_dir / KEY_FILE))
        new = MasterKey.load_or_create(pending)  # 0600, written and fsynced before use
        try:
            count = self.vault.rotate(Sealer(new))
        except BaseException:
            # Discard the new key only if nothing was sealed with it: a failure after the commit
            # (say, while scrubbing) leaves the file for the next open to finish the rename.
            try:
                committed = new.fingerprint in self.vault.fingerprints()
            except Exception:
                committed = True  # cannot tell: keep the key, the next open decides
            if not committed:
                pending.unlink(missing_ok=True)
            raise
        os.replace(pending, self.data_dir / KEY_FILE)
        _fsync_dir(self.data_dir)
        return count

    # -- consent and data -------------------------------------------------------------------

    def grant_consent(self, source: DataSource | str) -> None:
        """Allow a source (also one revoked before); kept in the stored preferences."""
        src = parse_source(source)
        self.vault.grant(src)
        revoked = self._revoked()
        if src in revoked:
            self._store_revoked(revoked - {src})
        if src not in self.preferences.enabled_sources:
            self.preferences = dataclasses.replace(
                self.preferences, enabled_sources=self.preferences.enabled_sources | {src}
            )
            self._save_preferences()

    def revoke_consent(self, source: DataSource | str) -> int:
        """Withdraw consent; the source's raw data is deleted at once (returns rows deleted).

        The revocation sticks: preferences that list the source (stored, or passed again when
        the twin is next opened) do not grant it again; only ``grant_consent`` does."""
        src = parse_source(source)
        deleted = self.vault.revoke(src)
        self._store_revoked(self._revoked() | {src})
        if src in self.preferences.enabled_sources:
            self.preferences = dataclasses.replace(
                self.preferences, enabled_sources=self.preferences.enabled_sources - {src}
            )
            self._save_preferences()
        self._kb = None
        return deleted

    def _revoked(self) -> frozenset[DataSource]:
        raw = self.vault.get_blob(_REVOKED)
        return frozenset(parse_source(n) for n in json.loads(raw)) if raw else frozenset()

    def _store_revoked(self, sources: frozenset[DataSource]) -> None:
        self.vault.put_blob(_REVOKED, json.dumps(sorted(s.value for s in sources)).encode())

    def _save_preferences(self) -> None:
        self.vault.put_blob(_PREFS, json.dumps(self.preferences.to_dict()).encode())

    def ingest(self, source: DataSource | str, records: Iterable[Record]) -> int:
        src = parse_source(source)
        stored = self.vault.add(records, source=src)
        self._kb = None
        return stored

    def ingest_file(self, source: DataSource | str, path: Path) -> ImportReport:
        """Import one export file: all its good rows in one transaction, bad rows reported."""
        src = parse_source(source)
        self.vault.require_consent(src)  # refuse before reading anything personal
        report = parse_file(src, path, tz=self.tz)  # zone-less times are the owner's clock
        report.stored = self.ingest(src, report.records)
        return report

    def forget(self, source: DataSource | str | None = None) -> int:
        deleted = self.vault.forget(None if source is None else parse_source(source))
        if source is None:
            self.model = TwinModel(self.tz)
            self.vault.delete_blob(_MODEL)
        self._kb = None
        return deleted

    def purge_expired(self) -> int:
        deleted = self.vault.purge_expired()
        if deleted:
            self._kb = None
        return deleted

    def start_retention_timer(
        self, interval_s: float = 300.0, *, after_purge: Callable[[int], object] | None = None
    ) -> asyncio.Task[None]:
        """Purge expired records every ``interval_s`` seconds (call inside an event loop);
        ``after_purge`` hears how many rows each pass deleted."""
        if self._timer is not None and not self._timer.done():
            return self._timer

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                deleted = await asyncio.to_thread(self.purge_expired)
                if after_purge is not None:
                    after_purge(deleted)

        self._timer = asyncio.get_running_loop().create_task(loop(), name="twin-retention")
        return self._timer

    # -- learning ---------------------------------------------------------------------------

    def deferral_reason(self, profile: DeviceProfile) -> tuple[str | None, str]:
        """(why learning must wait, or None; the device's power mode)."""
        verdict = evaluate(profile, self._policy)
        mode = verdict.power_mode
        if mode in _DEFERRING_MODES:
            why = "; ".join(r.text for r in verdict.reasons) or mode.value
            return f"deferred: device in {mode.value} mode ({why})", mode.value
        if self.preferences.learn_only_when_charging and not profile.on_mains:
            return "deferred: learning only while charging, and the device is not", mode.value
        return None, mode.value

    async def run_learning_cycle(self, device_profile: DeviceProfile) -> LearningCycle:
        """One learning cycle over the retained data the model has not seen yet."""
        return await asyncio.to_thread(self.learn_now, device_profile)

    def learn_now(self, device_profile: DeviceProfile) -> LearningCycle:
        started = time.perf_counter()
        deferred, mode = self.deferral_reason(device_profile)
        if deferred is not None:
            return LearningCycle(
                cycle=self.model.cycles,
                improvement_score=0.0,
                reason=deferred,
                deferred=True,
                power_mode=mode,
            )
        self.purge_expired()
        # Conversations are searched, not learnt (docs/twin.md §6). Only records ingested
        # after what the model has learnt are read and unsealed.
        sources = [s for s in DataSource if s is not DataSource.CONVERSATIONS]
        records: dict[DataSource, Sequence[Record]] = {
            s: self.vault.records(s, after_seq=self.model.seen.get(s.value)) for s in sources
        }
        if not any(records.values()):
            retained = any(self.vault.counts().get(s.value) for s in sources)
            return LearningCycle(
                cycle=self.model.cycles,
                improvement_score=0.0,
                reason=(
                    "no new data: everything retained has been learnt"
                    if retained
                    else "no data: nothing retained to learn from"
                ),
                power_mode=mode,
                duration_s=time.perf_counter() - started,
            )
        seed = int.from_bytes(os.urandom(4), "big")
        model, cycle = learn(self.model, records, seed=seed)
        blob = model.to_bytes()
        self.vault.put_blob(_MODEL, blob)
        self.model = model
        if self.preferences.delete_after_learning:
            for name in cycle.per_source:
                self.vault.forget(DataSource(name))
            self._kb = None
        cycle.model_bytes = len(blob)
        cycle.power_mode = mode
        cycle.duration_s = time.perf_counter() - started
        return cycle

    def predict(self, now: float | None = None, *, top: int = 3) -> dict[str, Any]:
        """The likeliest next app (given the last app seen), place, purchase category and
        busy/free at ``now``."""
        moment = self._clock.time() if now is None else now
        recent: list[str] = []
        since = float("inf")
        if self.model.last_app is not None:
            recent = [self.model.last_app[0]]
            since = moment - self.model.last_app[1]
        out: dict[str, Any] = {
            "next_app": self.model.predict_next_app(moment, recent, since_last_s=since, top=top)
        }
        for source, key in (
            (DataSource.LOCATION, "place"),
            (DataSource.PURCHASES, "purchase_category"),
            (DataSource.CALENDAR, "calendar"),
        ):
            out[key] = self.model.predict(source, moment, top=top)
        return out

    # -- mini-RAG ---------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder | None:
        """The embedder in use: the one given, else the real one if preferences ask for it
        (loaded on first use; ConfigError naming the extra when it is not installed)."""
        if self._embedder is None and self.preferences.embeddings:
            self._embedder = default_embedder()
        return self._embedder

    def knowledge_base(self) -> KnowledgeBase:
        """The in-memory index, built from the unsealed records on first use after a change.
        With an embedder, vectors come from the vault (sealed) and only chunks without one are
        embedded — then sealed and stored, so the next unlock does not embed them again."""
        if self._kb is not None:
            return self._kb
        pairs = [(r.ref, c) for r in self.vault.records() if (c := _chunk(r)) is not None]
        chunks = [c for _, c in pairs]
        embedder = self.embedder
        if embedder is None:
            self._kb = KnowledgeBase(chunks)
            return self._kb
        self.vault.drop_vectors(keep_model=embedder.name)  # another model's vectors are no use
        stored = self.vault.vectors(embedder.name)
        width = embedder.dim * 4
        vectors = np.zeros((len(pairs), embedder.dim), dtype=np.float32)
        missing: list[int] = []
        for i, (ref, _) in enumerate(pairs):
            raw = stored.get(ref or "")
            if raw is not None and len(raw) == width:
                vectors[i] = np.frombuffer(raw, dtype="<f4")
            else:
                missing.append(i)
        if missing:
            fresh = np.asarray(embedder.embed([chunks[i].text for i in missing]), dtype="<f4")
            vectors[missing] = fresh
            self.vault.put_vectors(
                embedder.name,
                ((pairs[i][0] or "", fresh[j].tobytes()) for j, i in enumerate(missing)),
            )
        self._kb = KnowledgeBase(chunks, embedder=embedder, vectors=vectors)
        return self._kb

    def ask(self, question: str, k: int = 5) -> list[Hit]:
        return self.knowledge_base().search(question, k)

    # -- privacy ----------------------------------------------------------------------------

    def _save_ledger(self) -> None:
        self.privacy.prune()
        self.vault.put_blob(_LEDGER, json.dumps(self.privacy.ledger).encode())

    def release(self, value: float, *, sensitivity: float, epsilon: float) -> float:
        """A differentially private release of one statistic, charged to today's budget."""
        try:
            return self.privacy.release(value, sensitivity=sensitivity, epsilon=epsilon)
        finally:
            self._save_ledger()

    def elevate(self, sink: ElevationSink, *, epsilon_each: float = 0.1) -> list[Contribution]:
        """Offer how often each purchase category appears to a global store (see elevation.py)."""
        counts: dict[str, int] = {}
        for record in self.vault.records(DataSource.PURCHASES):
            topic = f"purchase category {record.data.get('category', '')}"
            counts[topic] = counts.get(topic, 0) + 1
        pseudonym = self.vault.get_blob(_PSEUDONYM)
        if pseudonym is None:
            pseudonym = os.urandom(12).hex().encode()
            self.vault.put_blob(_PSEUDONYM, pseudonym)
        try:
            return elevate(
                counts,
                contributor=pseudonym.decode(),
                consent=self.preferences.allow_elevation,
                accountant=self.privacy,
                sink=sink,
                epsilon_each=epsilon_each,
            )
        finally:
            self._save_ledger()

    def privacy_report(self) -> dict[str, Any]:
        return {
            **self.privacy.report(),
            "retention_hours": self.preferences.max_data_retention_hours,
            "consented_sources": sorted(s.value for s in self.vault.consented()),
            "expired_rows": self.vault.expired_count(),
            "elevation_allowed": self.preferences.allow_elevation,
            "encryption": "AES-256-GCM per record (HKDF per-record keys)",
        }

    def status(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "preferences": self.preferences.to_dict(),
            "consented_sources": sorted(s.value for s in self.vault.consented()),
            "records": self.vault.counts(),
            "learning_cycles": self.model.cycles,
            "learnt_through_seq": self.model.seen,
            "timezone": self.timezone,
            "search": (
                "hybrid (BM25 + embeddings)"
                if self._embedder is not None or self.preferences.embeddings
                else "BM25"
            ),
        }

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.vault.close()

    def __enter__(self) -> DigitalTwinConcierge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
