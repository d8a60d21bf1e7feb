"""Importers: real export formats, bad rows reported by line and skipped, files all-or-nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogmesh.errors import ConfigError, ConsentError, TwinError
from fogmesh.twin import (
    DataSource,
    DigitalTwinConcierge,
    UserPreferences,
    parse_source,
    synthetic_persona,
)
from fogmesh.twin.persona import export_files
from fogmesh.twin.sources import parse_file, parse_text


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


APP_CSV = """timestamp,app,event
2026-11-02T07:01:00,clock,opened
2026-11-02T07:02:00,weather,opened
2026-11-02T07:02:30,weather,closed
not-a-time,news,opened
2026-11-02T07:05:00,,opened
2026-11-02T07:06:00,news,exploded
1793606400000,email,opened
2026-11-02T07:09:00,news
"""


def test_app_usage_csv_reports_bad_rows_by_line() -> None:
    report = parse_text(DataSource.APP_USAGE, APP_CSV, "usage.csv")
    assert [r.data["app"] for r in report.records] == ["clock", "weather", "email"]
    assert report.records[0].timestamp == _ts("2026-11-02T07:01:00")
    assert report.records[2].timestamp == 1_793_606_400.0  # milliseconds read as such
    assert [e.line for e in report.errors] == [5, 6, 7, 9]
    assert "expected 3 columns" in report.errors[3].reason


def test_app_usage_tsv_lsapp_style() -> None:
    text = (
        "user_id\tsession_id\ttimestamp\tapp_name\tevent_type\n"
        "1\t1\t2026-11-02 08:00:00\tMaps\tOpened\n"
    )
    report = parse_text(DataSource.APP_USAGE, text, "lsapp.tsv")
    assert [r.data["app"] for r in report.records] == ["Maps"]
    assert not report.errors


def test_missing_column_is_a_clear_error() -> None:
    with pytest.raises(TwinError, match="no app column"):
        parse_text(DataSource.APP_USAGE, "timestamp,what\n1,2\n", "x.csv")


def test_purchases_csv() -> None:
    text = (
        "date,merchant,amount,category\n"
        "2026-11-02,Corner Cafe,3.20,Coffee\n"
        "2026-11-02,Bad Shop,lots,coffee\n"
        "2026-11-03,FreshMart,$64.10,groceries\n"
        "2026-11-03,Nowhere,1.00,\n"
    )
    report = parse_text(DataSource.PURCHASES, text, "p.csv")
    assert [(r.data["merchant"], r.data["amount"], r.data["category"]) for r in report.records] == [
        ("Corner Cafe", 3.2, "coffee"),
        ("FreshMart", 64.1, "groceries"),
    ]
    assert [e.line for e in report.errors] == [3, 5]


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:1
DTSTART:20261102T093000Z
DTEND:20261102T094500Z
SUMMARY:Team standup
LOCATION:Room 4
END:VEVENT
BEGIN:VEVENT
UID:2
SUMMARY:No start at all
END:VEVENT
BEGIN:VEVENT
UID:3
DTSTART;VALUE=DATE:20261107
SUMMARY:Birthday
END:VEVENT
END:VCALENDAR
"""


def test_ics_events_and_a_broken_one() -> None:
    report = parse_text(DataSource.CALENDAR, ICS, "cal.ics")
    assert [r.data["summary"] for r in report.records] == ["Team standup", "Birthday"]
    standup = report.records[0]
    assert standup.timestamp == _ts("2026-11-02T09:30:00")
    assert standup.data["end"] - standup.timestamp == 900
    assert [e.line for e in report.errors] == [11]


GPX = """<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><trkseg>
  <trkpt lat="52.3702" lon="4.8952"><time>2026-11-02T08:00:00Z</time></trkpt>
  <trkpt lat="952.0" lon="4.8952"><time>2026-11-02T08:05:00Z</time></trkpt>
  <trkpt lat="52.3380" lon="4.8720"></trkpt>
  <trkpt lat="52.3380" lon="4.8720"><time>2026-11-02T09:00:00Z</time></trkpt>
 </trkseg></trk>
</gpx>
"""


def test_gpx_points_become_places() -> None:
    report = parse_text(DataSource.LOCATION, GPX, "walk.gpx")
    assert [r.data["place"] for r in report.records] == ["52.37,4.90", "52.34,4.87"]
    assert [e.line for e in report.errors] == [5, 6]


def test_takeout_json() -> None:
    text = (
        '{"locations": [{"latitudeE7": 523702000, "longitudeE7": 48952000, '
        '"timestamp": "2026-11-02T08:00:00Z"}, {"latitudeE7": "x"}, '
        '{"latitudeE7": 523380000, "longitudeE7": 48720000, "timestampMs": "1793606400000"}]}'
    )
    report = parse_text(DataSource.LOCATION, text, "Records.json")
    assert len(report.records) == 2
    assert [e.line for e in report.errors] == [2]
    with pytest.raises(TwinError, match="locations"):
        parse_text(DataSource.LOCATION, '{"other": 1}', "x.json")


WHATSAPP = """31/10/2026, 21:15 - Messages and calls are end-to-end encrypted.
31/10/2026, 21:16 - Sam: dinner on friday?
and bring the tickets
31/10/2026, 21:17 - Alex: sure
32/13/2026, 21:18 - Sam: impossible date
[01/11/2026, 09:00:03] Sam: morning
"""


def test_whatsapp_export_with_continuations() -> None:
    report = parse_text(DataSource.CONVERSATIONS, WHATSAPP, "chat.txt")
    texts = [r.data["text"] for r in report.records]
    assert texts == ["dinner on friday?\nand bring the tickets", "sure", "morning"]
    assert report.records[0].timestamp == _ts("2026-10-31T21:16:00")
    assert report.records[2].timestamp == _ts("2026-11-01T09:00:03")
    assert [e.line for e in report.errors] == [5]


def test_whatsapp_us_dates_with_am_pm() -> None:
    report = parse_text(DataSource.CONVERSATIONS, "12/31/26, 9:15 PM - Sam: late\n", "c.txt")
    assert report.records[0].timestamp == _ts("2026-12-31T21:15:00")


def test_jsonl_conversations() -> None:
    text = (
        '{"timestamp": "2026-11-02T08:00:00Z", "sender": "Sam", "text": "hi"}\n'
        "{broken\n"
        '{"timestamp": "2026-11-02T08:01:00Z", "sender": "Sam"}\n'
    )
    report = parse_text(DataSource.CONVERSATIONS, text, "c.jsonl")
    assert [r.data["text"] for r in report.records] == ["hi"]
    assert [e.line for e in report.errors] == [2, 3]


def test_wrong_source_name() -> None:
    with pytest.raises(ConfigError, match="unknown data source 'apps'"):
        parse_source("apps")
    assert parse_source("app-usage") is DataSource.APP_USAGE


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TwinError, match="cannot read"):
        parse_file(DataSource.APP_USAGE, tmp_path / "missing.csv")
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TwinError, match="not UTF-8"):
        parse_file(DataSource.APP_USAGE, bad)


def test_file_import_is_one_transaction_and_needs_consent(tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(APP_CSV)
    twin = DigitalTwinConcierge(tmp_path / "twin", UserPreferences())
    with pytest.raises(ConsentError):
        twin.ingest_file(DataSource.APP_USAGE, path)
    assert twin.vault.counts() == {}
    twin.grant_consent("app_usage")
    report = twin.ingest_file("app_usage", path)
    assert report.stored == 3 and len(report.errors) == 4
    assert twin.vault.counts() == {"app_usage": 3}
    broken = tmp_path / "broken.gpx"
    broken.write_text(GPX[: GPX.index("</trkseg>")])
    twin.grant_consent(DataSource.LOCATION)
    with pytest.raises(TwinError, match="not a readable GPX"):
        twin.ingest_file(DataSource.LOCATION, broken)
    assert twin.vault.counts() == {"app_usage": 3}  # nothing of the truncated file was stored
    twin.close()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("good"), st.integers(0, 10**6), st.sampled_from(["maps", "mail"])),
            st.tuples(st.just("bad"), st.text("abc,:-\t ", max_size=12), st.just("")),
        ),
        max_size=30,
    )
)
def test_good_rows_are_kept_and_every_bad_row_is_named(
    rows: list[tuple[str, int | str, str]],
) -> None:
    lines = ["timestamp,app,event"]
    expected_apps = []
    bad_lines = []
    for kind, a, b in rows:
        if kind == "good":
            lines.append(f"{1_793_000_000 + int(a)},{b},opened")
            expected_apps.append(b)
        elif str(a).strip(" ,\t"):
            lines.append(f"{a},,opened")
            bad_lines.append(len(lines))
    report = parse_text(DataSource.APP_USAGE, "\n".join(lines) + "\n", "p.csv")
    assert [r.data["app"] for r in report.records] == expected_apps
    assert [e.line for e in report.errors] == bad_lines


def test_persona_exports_round_trip_through_the_importers(tmp_path: Path) -> None:
    persona = synthetic_persona(3, seed=2)
    paths = export_files(persona, tmp_path / "exports")
    twin = DigitalTwinConcierge(tmp_path / "twin", UserPreferences(enabled_sources=set(DataSource)))
    for source, path in paths.items():
        report = twin.ingest_file(source, path)
        assert report.errors == [] and report.stored == len(persona.records[source])
    stored = twin.vault.records(DataSource.APP_USAGE)
    original = persona.records[DataSource.APP_USAGE]
    assert sorted((int(r.timestamp), r.data["app"]) for r in stored) == sorted(
        (int(r.timestamp), r.data["app"]) for r in original
    )
    places = {r.data["place"] for r in twin.vault.records(DataSource.LOCATION)}
    assert places == {r.data["place"] for r in persona.records[DataSource.LOCATION]}
    twin.close()
