"""Local time: the learner reads hours and weekdays in the owner's zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from fogmesh.clock import ManualClock
from fogmesh.devices.emulated import preset
from fogmesh.errors import ConfigError
from fogmesh.twin import DataSource, DigitalTwinConcierge, Record, TwinModel, UserPreferences, learn
from fogmesh.twin.learner import utc_offsets
from fogmesh.twin.prefs import local_zone_name

NEW_YORK = ZoneInfo("America/New_York")  # DST ends 2026-11-01 02:00 EDT → 01:00 EST


def _local(day: datetime, hour: int, minute: int) -> float:
    return day.replace(hour=hour, minute=minute, tzinfo=NEW_YORK).timestamp()


def _routine(first: datetime, days: int) -> dict[DataSource, list[Record]]:
    """A SYNTHETIC New Yorker: at the gym 07:00–08:00 local every day, at home otherwise;
    opens 'alarm' at 06:55 and 'fitness' at 07:05 local."""
    places: list[Record] = []
    apps: list[Record] = []
    for d in range(days):
        day = first + timedelta(days=d)
        for hour in range(5, 11):
            for minute in (10, 40):
                place = "gym" if hour == 7 else "home"
                places.append(
                    Record(DataSource.LOCATION, _local(day, hour, minute), {"place": place})
                )
        apps.append(Record(DataSource.APP_USAGE, _local(day, 6, 55), {"app": "alarm"}))
        apps.append(Record(DataSource.APP_USAGE, _local(day, 7, 5), {"app": "fitness"}))
        apps.append(Record(DataSource.APP_USAGE, _local(day, 9, 30), {"app": "email"}))
    return {DataSource.LOCATION: places, DataSource.APP_USAGE: apps}


FIRST = datetime(2026, 10, 5)  # 27 days of EDT, then 8 of EST
DAYS = 35


def test_learner_follows_local_hours_across_the_dst_change() -> None:
    data = _routine(FIRST, DAYS)
    local, _ = learn(TwinModel(NEW_YORK), data, seed=1)
    utc, _ = learn(TwinModel(), data, seed=1)
    after = datetime(2026, 11, 17)  # a day the model has not seen, in EST
    before = datetime(2026, 10, 27)  # in EDT
    for day in (before, after):
        assert local.predict(DataSource.LOCATION, _local(day, 7, 30))[0][0] == "gym"
        assert local.predict(DataSource.LOCATION, _local(day, 6, 30))[0][0] == "home"
        assert local.predict(DataSource.LOCATION, _local(day, 8, 30))[0][0] == "home"
        top = local.predict_next_app(_local(day, 7, 1), ["alarm"], since_last_s=360)
        assert top[0][0] == "fitness"
    # The same data read in UTC: the gym hour moved from 11 to 12 UTC with the clocks, so at
    # 06:30 EST (11:30 UTC, the old 07:30 EDT) a UTC model still expects the gym.
    assert utc.predict(DataSource.LOCATION, _local(after, 6, 30))[0][0] == "gym"


def test_offsets_are_exact_per_record_around_transitions() -> None:
    zones = ("America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Europe/Dublin", "UTC")
    # Around 2026's autumn/spring changes in both hemispheres, every 7 minutes.
    starts = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 4, 4, tzinfo=UTC))
    ts = np.concatenate(
        [np.arange(s.timestamp(), s.timestamp() + 2 * 86_400, 420.0) for s in starts]
    )
    for name in zones:
        tz = ZoneInfo(name)
        expected = [
            int(datetime.fromtimestamp(float(t), UTC).astimezone(tz).utcoffset().total_seconds())  # type: ignore[union-attr]
            for t in ts
        ]
        assert utc_offsets(ts, tz).tolist() == expected, name
    assert utc_offsets(ts, None).tolist() == [0] * len(ts)


async def test_concierge_uses_the_owner_zone(tmp_path: Path) -> None:
    data = _routine(FIRST, DAYS)
    clock = ManualClock(_local(FIRST + timedelta(days=DAYS), 0, 0))
    prefs = UserPreferences(enabled_sources=set(DataSource), timezone="America/New_York")
    twin = DigitalTwinConcierge(tmp_path / "t", prefs, clock=clock)
    assert twin.timezone == "America/New_York" and twin.status()["timezone"] == "America/New_York"
    for source, records in data.items():
        twin.ingest(source, records)
    cycle = await twin.run_learning_cycle(preset("desktop"))
    assert cycle.samples > 0
    after = datetime(2026, 11, 17)
    assert twin.predict(_local(after, 7, 30))["place"][0][0] == "gym"
    assert twin.predict(_local(after, 6, 30))["place"][0][0] == "home"
    twin.close()
    # the zone is part of the remembered preferences, and the stored model is read in it
    again = DigitalTwinConcierge(tmp_path / "t", clock=clock)
    assert again.preferences.timezone == "America/New_York"
    assert again.predict(_local(after, 7, 30))["place"][0][0] == "gym"
    again.close()


def test_default_zone_follows_the_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    assert local_zone_name() == "Asia/Kolkata"
    twin = DigitalTwinConcierge(tmp_path / "t", UserPreferences())
    assert twin.preferences.timezone is None and twin.timezone == "Asia/Kolkata"
    twin.close()
    monkeypatch.setenv("TZ", ":/usr/share/zoneinfo/Europe/Paris")
    assert local_zone_name() == "Europe/Paris"
    monkeypatch.setenv("TZ", "Mars/Olympus_Mons")  # not a zone: fall back to the system's files
    assert ZoneInfo(local_zone_name()) is not None


def test_bad_zone_names_are_clear_errors() -> None:
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", " "):
        with pytest.raises(ConfigError, match="timezone"):
            UserPreferences(timezone=bad)
    assert UserPreferences(timezone="Europe/Amsterdam").to_dict()["timezone"] == "Europe/Amsterdam"


def test_zone_less_export_times_are_the_owners_wall_clock(tmp_path: Path) -> None:
    prefs = UserPreferences(enabled_sources=set(DataSource), timezone="Europe/Berlin")
    twin = DigitalTwinConcierge(tmp_path / "t", prefs, clock=ManualClock(START_2026))
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "timestamp,app,event\n2026-07-01T07:00:00,alarm,opened\n2026-07-01T07:00:00Z,news,opened\n"
    )
    chat = tmp_path / "chat.txt"
    chat.write_text("01/12/2026, 07:30 - Sam: morning!\n")
    cal = tmp_path / "cal.ics"
    cal.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTART:20261201T090000\r\nSUMMARY:floating\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    twin.ingest_file("app_usage", usage)
    twin.ingest_file("conversations", chat)
    twin.ingest_file("calendar", cal)
    berlin = ZoneInfo("Europe/Berlin")
    stamps = {
        r.data.get("app") or r.data.get("text") or r.data.get("summary"): r.timestamp
        for r in twin.vault.records()
    }
    assert stamps["alarm"] == datetime(2026, 7, 1, 7, tzinfo=berlin).timestamp()  # CEST
    assert stamps["news"] == datetime(2026, 7, 1, 7, tzinfo=UTC).timestamp()  # said UTC
    assert stamps["morning!"] == datetime(2026, 12, 1, 7, 30, tzinfo=berlin).timestamp()  # CET
    assert stamps["floating"] == datetime(2026, 12, 1, 9, tzinfo=berlin).timestamp()
    twin.close()


START_2026 = datetime(2026, 12, 2, tzinfo=UTC).timestamp()
