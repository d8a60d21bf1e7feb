"""The seed API as written, deferral, retention timer, forgetting, and nothing plain on disk."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from twin_helpers import START, disk_bytes

from fogmesh.clock import ManualClock
from fogmesh.devices.emulated import preset
from fogmesh.errors import (
    ConfigError,
    ConsentError,
    IntegrityError,
    KeyFileError,
    PrivacyBudgetExceeded,
)
from fogmesh.security.sealed import MasterKey
from fogmesh.twin import (
    DataSource,
    DigitalTwinConcierge,
    GlobalKnowledgeStore,
    Persona,
    Record,
    UserPreferences,
)


async def test_seed_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    from fogmesh import MobileResourceManager

    resource_manager = MobileResourceManager()
    preferences = UserPreferences(
        enabled_sources={DataSource.CONVERSATIONS, DataSource.APP_USAGE},
        max_data_retention_hours=24,
        privacy_mode="balanced",
    )
    twin = DigitalTwinConcierge(data_dir=Path("./twin_data"), preferences=preferences)
    device_profile = await resource_manager.create_device_profile_from_env()
    learning_cycle = await twin.run_learning_cycle(device_profile)
    text = f"Learning complete: {learning_cycle.improvement_score:.3f} accuracy"
    assert text == "Learning complete: 0.000 accuracy"
    assert learning_cycle.reason.startswith("no data") or learning_cycle.deferred
    key = tmp_path / "twin_data" / "twin.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "twin_data").stat().st_mode & 0o777 == 0o700
    twin.close()


def _twin(tmp_path: Path, clock: ManualClock, **prefs: object) -> DigitalTwinConcierge:
    preferences = UserPreferences(
        enabled_sources=set(DataSource),
        max_data_retention_hours=24,
        **prefs,  # type: ignore[arg-type]
    )
    return DigitalTwinConcierge(tmp_path / "twin", preferences, clock=clock)


def _recent(persona: Persona, clock: ManualClock, days: int = 3) -> dict[DataSource, list[Record]]:
    """The persona's first ``days`` days, shifted so they end just before ``clock``."""
    t0 = persona.all()[0].timestamp
    shift = clock.time() - days * 86_400 - t0
    return {
        s: [Record(s, r.timestamp + shift, r.data) for r in rs if r.timestamp < t0 + days * 86_400]
        for s, rs in persona.records.items()
    }


async def test_learning_cycle_on_ingested_data(
    tmp_path: Path, clock: ManualClock, persona: Persona
) -> None:
    twin = _twin(tmp_path, clock)
    for source, records in _recent(persona, clock).items():
        twin.ingest(source, records)
    cycle = await twin.run_learning_cycle(preset("desktop"))
    assert not cycle.deferred and cycle.samples > 800
    assert 1_000_000 <= cycle.model_bytes <= 10_000_000
    assert cycle.per_source["app_usage"].accuracy_after > 0.3
    prediction = twin.predict()
    assert prediction["next_app"] and prediction["place"]
    twin.close()
    # the model survives a restart (sealed in the vault)
    again = _twin(tmp_path, clock)
    assert again.model.cycles == 1
    assert again.predict() == prediction
    again.close()


@pytest.mark.parametrize("name", ["phone-critical-battery", "phone-low-power-mode"])
async def test_cycles_are_deferred_when_the_device_must_save_power(
    tmp_path: Path, clock: ManualClock, name: str
) -> None:
    twin = _twin(tmp_path, clock)
    cycle = await twin.run_learning_cycle(preset(name))
    assert cycle.deferred and cycle.improvement_score == 0.0
    assert cycle.reason.startswith("deferred: device in") and cycle.power_mode in (
        "critical",
        "power_save",
    )
    twin.close()


async def test_only_when_charging_is_honoured(tmp_path: Path, clock: ManualClock) -> None:
    twin = _twin(tmp_path, clock, learn_only_when_charging=True)
    on_battery = preset("laptop-on-battery")
    cycle = await twin.run_learning_cycle(on_battery)
    assert cycle.deferred and "only while charging" in cycle.reason
    cycle = await twin.run_learning_cycle(on_battery.replace(charging=True))
    assert not cycle.deferred
    twin.close()


async def test_retention_timer_purges_expired_records(tmp_path: Path, clock: ManualClock) -> None:
    twin = _twin(tmp_path, clock)
    twin.ingest("conversations", [Record(DataSource.CONVERSATIONS, START, {"text": "hello"})])
    passes: list[int] = []
    purged = asyncio.Event()

    def heard(deleted: int) -> None:
        passes.append(deleted)
        if deleted:
            purged.set()

    timer = twin.start_retention_timer(0.01, after_purge=heard)
    clock.advance(24 * 3600 + 1)
    await asyncio.wait_for(purged.wait(), timeout=5)
    assert passes[-1] == 1 and twin.vault.counts() == {}
    assert not timer.done()
    twin.close()
    assert timer.cancelled() or timer.cancelling()


def test_nothing_plain_on_disk_after_everything(
    tmp_path: Path, clock: ManualClock, persona: Persona
) -> None:
    twin = _twin(tmp_path, clock)
    secret = "Zanzibar-Quartz-4417"
    twin.ingest("conversations", [Record(DataSource.CONVERSATIONS, START, {"text": secret})])
    for source, records in _recent(persona, clock, 1).items():
        twin.ingest(source, records)
    twin.learn_now(preset("desktop"))
    assert twin.ask("Zanzibar")[0].chunk.text.endswith(secret)
    files = b"".join(disk_bytes(p) for p in (tmp_path / "twin").iterdir() if p.suffix == ".db")
    for needle in (secret, "Zanzibar", "slack", "Noodle Bar", "Team standup", "52.37"):
        assert needle.encode() not in files
    assert {p.name for p in (tmp_path / "twin").iterdir()} <= {
        "twin.db",
        "twin.db-wal",
        "twin.db-shm",
        "twin.key",
    }
    twin.close()


def test_consent_revoke_and_forget(tmp_path: Path, clock: ManualClock) -> None:
    twin = DigitalTwinConcierge(tmp_path / "t", UserPreferences(), clock=clock)
    record = Record(DataSource.PURCHASES, START, {"merchant": "M", "category": "x", "amount": 1})
    with pytest.raises(ConsentError):
        twin.ingest("purchases", [record])
    twin.grant_consent("purchases")
    twin.ingest("purchases", [record, record])
    assert twin.revoke_consent("purchases") == 2
    assert twin.status()["records"] == {}
    twin.grant_consent("purchases")
    twin.ingest("purchases", [record])
    assert twin.forget() == 1 and twin.status()["records"] == {}
    twin.close()


def test_preferences_are_validated_and_remembered(tmp_path: Path, clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match="max_data_retention_hours"):
        UserPreferences(max_data_retention_hours=48)
    with pytest.raises(ConfigError, match="privacy_mode"):
        UserPreferences(privacy_mode="loose")
    DigitalTwinConcierge(
        tmp_path / "t",
        UserPreferences(max_data_retention_hours=2, privacy_mode="strict"),
        clock=clock,
    ).close()
    twin = DigitalTwinConcierge(tmp_path / "t", clock=clock)
    assert twin.preferences.max_data_retention_hours == 2
    assert twin.privacy_report()["privacy_mode"] == "strict"
    twin.close()


def test_elevation_through_a_sink(tmp_path: Path, clock: ManualClock, persona: Persona) -> None:
    store = GlobalKnowledgeStore(k=2)
    twins = []
    for n in range(2):
        twin = DigitalTwinConcierge(
            tmp_path / f"t{n}",
            UserPreferences(enabled_sources={DataSource.PURCHASES}, allow_elevation=True),
            clock=clock,
        )
        twin.ingest("purchases", _recent(persona, clock, 3)[DataSource.PURCHASES])
        sent = twin.elevate(store, epsilon_each=0.1)
        assert {c.topic for c in sent} >= {"purchase category coffee"}
        twins.append(twin)
    assert {item["topic"] for item in store.published()} >= {"purchase category coffee"}
    report = twins[0].privacy_report()
    assert report["releases_today"] == len(sent) and report["epsilon_spent_today"] > 0
    for twin in twins:
        twin.close()
    assert os.path.exists(tmp_path / "t0" / "twin.db")


def test_delete_after_learning(tmp_path: Path, clock: ManualClock, persona: Persona) -> None:
    twin = _twin(tmp_path, clock, delete_after_learning=True)
    for source, records in _recent(persona, clock, 1).items():
        twin.ingest(source, records)
    cycle = twin.learn_now(preset("desktop"))
    assert set(cycle.per_source) == {"app_usage", "location", "purchases", "calendar"}
    # learnt sources are gone; conversations (only searched, never learnt) stay until retention
    assert set(twin.vault.counts()) == {"conversations"}
    twin.close()


def test_privacy_budget_survives_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    twin = _twin(tmp_path, clock)
    twin.release(5.0, sensitivity=1.0, epsilon=0.6)
    spent = twin.privacy_report()["epsilon_spent_today"]
    twin.close()
    again = _twin(tmp_path, clock)
    assert again.privacy_report()["epsilon_spent_today"] == spent > 0.5
    with pytest.raises(PrivacyBudgetExceeded):
        again.release(5.0, sensitivity=1.0, epsilon=0.6)
    again.close()


def test_a_foreign_master_key_cannot_read_the_vault(tmp_path: Path, clock: ManualClock) -> None:
    twin = _twin(tmp_path, clock)
    twin.ingest("conversations", [Record(DataSource.CONVERSATIONS, START, {"text": "hi"})])
    twin.close()
    key = tmp_path / "twin" / "twin.key"
    key.unlink()
    with pytest.raises(KeyFileError, match="does not exist"):
        _twin(tmp_path, clock)  # no new key is minted for an existing vault
    MasterKey.load_or_create(key)  # someone else's key
    with pytest.raises(IntegrityError, match="sealed under an unknown master key"):
        _twin(tmp_path, clock)


def test_a_revoked_source_stays_revoked_when_the_twin_opens_again(
    tmp_path: Path, clock: ManualClock
) -> None:
    # The seed example passes the same preferences at every start: they must not undo the
    # owner's revocation; neither may the preferences stored when the twin was created.
    prefs = UserPreferences(enabled_sources={DataSource.CONVERSATIONS, DataSource.APP_USAGE})
    twin = DigitalTwinConcierge(tmp_path / "t", prefs, clock=clock)
    twin.revoke_consent("conversations")
    twin.close()
    for given in (None, prefs):
        twin = DigitalTwinConcierge(tmp_path / "t", given, clock=clock)
        assert twin.vault.consented() == {DataSource.APP_USAGE}
        assert twin.preferences.enabled_sources == {DataSource.APP_USAGE}
        with pytest.raises(ConsentError):
            twin.ingest("conversations", [Record(DataSource.CONVERSATIONS, START, {"text": "x"})])
        twin.close()
    # only an explicit grant brings it back, and that sticks too
    twin = DigitalTwinConcierge(tmp_path / "t", clock=clock)
    twin.grant_consent("conversations")
    twin.close()
    twin = DigitalTwinConcierge(tmp_path / "t", clock=clock)
    assert twin.vault.consented() == {DataSource.APP_USAGE, DataSource.CONVERSATIONS}
    assert twin.preferences.enabled_sources == twin.vault.consented()
    twin.close()
