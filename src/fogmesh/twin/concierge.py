"""``DigitalTwinConcierge``: the seed's on-device twin — vault, consent, retention, learner,
privacy and mini-RAG behind one object.

Files in ``data_dir`` (created 0700): ``twin.key`` (the vault's master key, a 0600 key file),
``twin.db`` (+ WAL; only sealed content). On a phone the master key would live in the OS keystore
(Android Keystore / iOS Keychain, hardware-backed); the 0600 file emulates it, so anyone who can
read the data directory as the owner can read the twin.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from fogmesh.clock import Clock, WallClock
from fogmesh.devices.model import DeviceProfile
from fogmesh.mobile import PowerMode, ResourcePolicy, evaluate
from fogmesh.security.sealed import MasterKey, Sealer
from fogmesh.twin.elevation import Contribution, ElevationSink, elevate
from fogmesh.twin.learner import LearningCycle, TwinModel, learn
from fogmesh.twin.prefs import DataSource, Record, UserPreferences, parse_source
from fogmesh.twin.privacy import PrivacyAccountant
from fogmesh.twin.rag import Chunk, Hit, KnowledgeBase
from fogmesh.twin.sources import ImportReport, parse_file
from fogmesh.twin.vault import Vault

__all__ = ["DigitalTwinConcierge"]

KEY_FILE: Final = "twin.key"
DB_FILE: Final = "twin.db"
_MODEL: Final = "model"
_LEDGER: Final = "privacy-ledger"
_PREFS: Final = "preferences"
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
    consent given or revoked later (``grant_consent``/``revoke_consent``) is kept in the vault."""

    def __init__(
        self,
        data_dir: Path,
        preferences: UserPreferences | None = None,
        *,
        clock: Clock | None = None,
        policy: ResourcePolicy | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._clock = clock or WallClock()
        self._policy = policy or ResourcePolicy()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        key_path = self.data_dir / KEY_FILE
        # A vault without its key is unreadable: say so rather than mint a key that cannot open it.
        existing = (self.data_dir / DB_FILE).exists()
        master = MasterKey.load(key_path) if existing else MasterKey.load_or_create(key_path)
        sealer = Sealer(master)
        self.vault = Vault(self.data_dir / DB_FILE, sealer, clock=self._clock)
        raw = self.vault.get_blob(_PREFS)
        if preferences is None and raw is not None:
            preferences = UserPreferences(**json.loads(raw))
        self.preferences = preferences or UserPreferences()
        self.vault.retention_seconds = self.preferences.retention_seconds
        self.vault.put_blob(_PREFS, json.dumps(self.preferences.to_dict()).encode())
        for source in self.preferences.enabled_sources:
            self.vault.grant(source)
        self.vault.purge_expired()
        ledger = json.loads(self.vault.get_blob(_LEDGER) or b"[]")
        self.privacy = PrivacyAccountant(
            self.preferences.privacy_mode, clock=self._clock, ledger=ledger
        )
        blob = self.vault.get_blob(_MODEL)
        self.model = TwinModel.from_bytes(blob) if blob is not None else TwinModel()
        self._kb: KnowledgeBase | None = None
        self._timer: asyncio.Task[None] | None = None

    # -- consent and data -------------------------------------------------------------------

    def grant_consent(self, source: DataSource | str) -> None:
        self.vault.grant(parse_source(source))

    def revoke_consent(self, source: DataSource | str) -> int:
        """Withdraw consent; the source's raw data is deleted at once (returns rows deleted)."""
        deleted = self.vault.revoke(parse_source(source))
        self._kb = None
        return deleted

    def ingest(self, source: DataSource | str, records: Iterable[Record]) -> int:
        src = parse_source(source)
        stored = self.vault.add(records, source=src)
        self._kb = None
        return stored

    def ingest_file(self, source: DataSource | str, path: Path) -> ImportReport:
        """Import one export file: all its good rows in one transaction, bad rows reported."""
        src = parse_source(source)
        self.vault.require_consent(src)  # refuse before reading anything personal
        report = parse_file(src, path)
        report.stored = self.ingest(src, report.records)
        return report

    def forget(self, source: DataSource | str | None = None) -> int:
        deleted = self.vault.forget(None if source is None else parse_source(source))
        if source is None:
            self.model = TwinModel()
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
        sources = [s for s in DataSource if s is not DataSource.CONVERSATIONS]
        records: dict[DataSource, Sequence[Record]] = {s: self.vault.records(s) for s in sources}
        if not any(records.values()):
            return LearningCycle(
                cycle=self.model.cycles,
                improvement_score=0.0,
                reason="no data: nothing retained to learn from",
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

    def knowledge_base(self) -> KnowledgeBase:
        if self._kb is None:
            chunks = (_chunk(r) for r in self.vault.records())
            self._kb = KnowledgeBase(c for c in chunks if c is not None)
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
            "watermarks": self.model.watermarks,
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
