"""Exactly once: the learner's watermark follows ingestion order, so late imports are learnt."""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
from twin_helpers import START

from fogmesh.clock import ManualClock
from fogmesh.devices.emulated import preset
from fogmesh.security.sealed import Sealer
from fogmesh.twin import (
    DataSource,
    DigitalTwinConcierge,
    Persona,
    Record,
    TwinModel,
    UserPreferences,
    learn,
)
from fogmesh.twin.learner import fresh_records
from fogmesh.twin.vault import RECORD_KIND, Vault

DAY = 86_400.0


def _days(
    persona: Persona, source: DataSource, first: int, last: int, shift: float
) -> list[Record]:
    t0 = persona.all()[0].timestamp // DAY * DAY
    lo, hi = t0 + first * DAY, t0 + last * DAY
    return [
        replace(r, timestamp=r.timestamp + shift)
        for r in persona.records[source]
        if lo <= r.timestamp < hi
    ]


def test_last_weeks_calendar_imported_after_todays_data_is_learnt_once(
    tmp_path: Path, persona: Persona
) -> None:
    clock = ManualClock(START + 14 * DAY)
    shift = clock.time() - 14 * DAY - persona.all()[0].timestamp // DAY * DAY
    prefs = UserPreferences(enabled_sources=set(DataSource))
    twin = DigitalTwinConcierge(tmp_path / "t", prefs, clock=clock)
    today_apps = _days(persona, DataSource.APP_USAGE, 13, 14, shift)
    today_cal = _days(persona, DataSource.CALENDAR, 11, 12, shift)  # Friday's meetings
    twin.ingest("app_usage", today_apps)
    twin.ingest("calendar", today_cal)
    first = twin.learn_now(preset("desktop"))
    assert first.per_source["app_usage"].samples == len(today_apps)
    # now last week's calendar and app usage arrive: all older than what was learnt
    late_cal = _days(persona, DataSource.CALENDAR, 7, 11, shift)
    late_apps = _days(persona, DataSource.APP_USAGE, 7, 8, shift)
    assert max(r.timestamp for r in late_cal) < min(r.timestamp for r in today_cal)
    twin.ingest("calendar", late_cal)
    twin.ingest("app_usage", late_apps)
    second = twin.learn_now(preset("desktop"))
    assert set(second.per_source) == {"calendar", "app_usage"}
    assert second.per_source["app_usage"].samples == len(late_apps)
    assert second.per_source["calendar"].samples > 0
    # the late, older usage did not become the "last app seen"
    assert twin.model.last_app is not None
    assert twin.model.last_app[1] == max(r.timestamp for r in today_apps)
    third = twin.learn_now(preset("desktop"))
    assert third.per_source == {} and third.reason.startswith("no new data")
    twin.close()


def test_pure_learner_takes_records_by_sequence_not_time(persona: Persona) -> None:
    apps = persona.records[DataSource.APP_USAGE]
    new = [replace(r, seq=i + 100) for i, r in enumerate(apps[200:400])]
    old = [replace(r, seq=i + 1000) for i, r in enumerate(apps[:200])]  # older, ingested later
    model, cycle = learn(TwinModel(), {DataSource.APP_USAGE: new}, seed=1)
    assert model.seen == {"app_usage": 100 + 199}
    both = {DataSource.APP_USAGE: new + old}
    assert fresh_records(model, DataSource.APP_USAGE, both[DataSource.APP_USAGE]) == old
    model, cycle = learn(model, both, seed=2)
    assert cycle.per_source["app_usage"].samples == 200 and model.seen["app_usage"] == 1199
    _, again = learn(model, both, seed=3)
    assert again.reason == "no new data"


def test_a_version_1_timestamp_watermark_is_honoured_once(persona: Persona) -> None:
    apps = [
        replace(r, seq=i + 1) for i, r in enumerate(persona.records[DataSource.APP_USAGE][:300])
    ]
    model = TwinModel()
    model.legacy_marks = {"app_usage": apps[99].timestamp}  # learnt up to the 100th by time
    after, cycle = learn(model, {DataSource.APP_USAGE: apps}, seed=1)
    assert cycle.per_source["app_usage"].samples == 200
    assert after.legacy_marks == {} and after.seen == {"app_usage": 300}
    back = TwinModel.from_bytes(after.to_bytes())
    assert back.seen == {"app_usage": 300} and back.legacy_marks == {}


def test_sequence_numbers_are_never_reused(vault: Vault) -> None:
    chat = [Record(DataSource.CONVERSATIONS, START + i, {"text": f"m{i}"}) for i in range(3)]
    vault.grant(DataSource.CONVERSATIONS)
    vault.add(chat, source=DataSource.CONVERSATIONS)
    assert [r.seq for r in vault.records()] == [1, 2, 3]
    vault.forget()
    vault.add(chat[:2], source=DataSource.CONVERSATIONS)
    assert [r.seq for r in vault.records()] == [4, 5]  # not 1, 2: SQLite would reuse rowids
    assert [r.seq for r in vault.records(after_seq=4)] == [5]
    assert all(r.ref for r in vault.records())


def test_an_old_vault_is_numbered_in_insertion_order(tmp_path: Path, sealer: Sealer) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE records (id TEXT PRIMARY KEY, source TEXT NOT NULL, "
        "expires_at REAL NOT NULL, body BLOB NOT NULL)"
    )
    for i, ts in enumerate((START + 50, START + 10, START + 30)):  # inserted out of time order
        body = f'[{ts}, {{"app": "a{i}"}}]'.encode()
        sealed = sealer.seal(body, record_id=f"r{i}", kind=f"{RECORD_KIND}:app_usage")
        db.execute(
            "INSERT INTO records VALUES (?, 'app_usage', ?, ?)", (f"r{i}", START + 1e6, sealed)
        )
    db.commit()
    db.close()
    vault = Vault(path, sealer, clock=ManualClock(START))
    assert {r.data["app"]: r.seq for r in vault.records()} == {"a0": 1, "a1": 2, "a2": 3}
    vault.grant(DataSource.APP_USAGE)
    vault.add([Record(DataSource.APP_USAGE, START, {"app": "new"})], source=DataSource.APP_USAGE)
    assert max(r.seq or 0 for r in vault.records()) == 4
    vault.close()


def test_a_version_1_model_file_is_read(persona: Persona) -> None:
    model, _ = learn(TwinModel(), {DataSource.APP_USAGE: persona.records[DataSource.APP_USAGE]})
    with np.load(io.BytesIO(model.to_bytes())) as stored:
        arrays = {k: stored[k] for k in stored.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta = {k: v for k, v in meta.items() if k not in ("seen", "legacy_marks")}
    meta.update(version=1, watermarks={"app_usage": 1_793_000_000.5})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    back = TwinModel.from_bytes(buffer.getvalue())
    assert back.legacy_marks == {"app_usage": 1_793_000_000.5} and back.seen == {}
    assert back.predict_next_app(START, ["email"]) == model.predict_next_app(START, ["email"])
