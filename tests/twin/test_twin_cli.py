"""``fogmesh twin …`` end to end through Typer's runner and ``main``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fogmesh.cli import app, main

runner = CliRunner()

USAGE = """timestamp,app,event
2026-11-02T07:01:00,clock,opened
2026-11-02T07:02:00,weather,opened
broken,row,opened
2026-11-02T07:03:00,news,opened
2026-11-02T07:04:00,email,opened
"""


def twin(data: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["twin", *args, "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_a_full_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "twin"
    monkeypatch.setenv("FOGMESH_PROFILE", "desktop")
    assert (
        twin(data, "init", "--retention-hours", "12")["preferences"]["max_data_retention_hours"]
        == 12
    )
    usage = tmp_path / "usage.csv"
    usage.write_text(USAGE)
    assert twin(data, "consent", "grant", "app-usage")["granted"] == "app_usage"
    report = twin(data, "ingest", "--source", "app_usage", str(usage))
    assert report["stored"] == 4 and report["skipped"][0]["line"] == 4
    cycle = twin(data, "learn")
    assert cycle["deferred"] is False and cycle["samples"] == 4
    prediction = twin(data, "predict", "--at", "2026-11-02T07:03:30")
    assert prediction["next_app"][0][0] in {"clock", "weather", "news", "email"}
    status = twin(data, "status")
    assert status["records"] == {"app_usage": 4} and status["learning_cycles"] == 1
    assert twin(data, "privacy-report")["epsilon_spent_today"] == 0
    assert twin(data, "forget", "--source", "app_usage")["deleted"] == 4
    assert twin(data, "consent", "revoke", "app_usage")["deleted"] == 0


def test_ask_finds_conversations(tmp_path: Path) -> None:
    data = tmp_path / "twin"
    chat = tmp_path / "chat.txt"
    chat.write_text("01/11/2026, 20:00 - Sam: dinner at the noodle bar on friday?\n")
    twin(data, "consent", "grant", "conversations")
    twin(data, "ingest", "--source", "conversations", str(chat))
    hits = twin(data, "ask", "noodle friday")
    assert hits[0]["text"] == "Sam: dinner at the noodle bar on friday?"
    plain = runner.invoke(app, ["twin", "ask", "noodle", "--data-dir", str(data)])
    assert "noodle bar" in plain.output


def test_errors_are_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    usage = tmp_path / "usage.csv"
    usage.write_text(USAGE)
    cases = [
        (["ingest", "--source", "app_usage", str(usage)], "no consent for app_usage"),
        (["consent", "grant", "apps"], "unknown data source 'apps'"),
        (["init", "--retention-hours", "48"], "max_data_retention_hours"),
        (["init", "--timezone", "Mars/Olympus_Mons"], "unknown time zone"),
        (["predict", "--at", "yesterday-ish"], "cannot read 'yesterday-ish' as a time"),
    ]
    for args, message in cases:
        argv = ["fogmesh", "twin", *args, "--data-dir", str(tmp_path / "t")]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_every_command_has_help_with_an_example() -> None:
    for args in (
        ["init"],
        ["consent", "grant"],
        ["ingest"],
        ["learn"],
        ["predict"],
        ["ask"],
        ["status"],
        ["forget"],
        ["privacy-report"],
        ["rotate-key"],
    ):
        result = runner.invoke(app, ["twin", *args, "--help"])
        assert result.exit_code == 0 and "Example: fogmesh twin" in result.output


def test_init_embeddings_without_the_extra_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fogmesh.cli.twin as twin_cli

    monkeypatch.setattr(twin_cli, "embeddings_available", lambda: False)
    monkeypatch.setattr(
        sys, "argv", ["fogmesh", "twin", "init", "--embeddings", "--data-dir", str(tmp_path / "t")]
    )
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "'embeddings' extra" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t").exists()  # refused before anything was created


def test_init_on_an_existing_twin_changes_only_what_it_is_told(tmp_path: Path) -> None:
    data = tmp_path / "twin"
    first = twin(
        data, "init", "--retention-hours", "6", "--privacy-mode", "strict",
        "--timezone", "Europe/Berlin", "--allow-elevation",
    )["preferences"]  # fmt: skip
    twin(data, "consent", "grant", "calendar")
    after = twin(data, "init", "--only-when-charging")["preferences"]
    assert after == first | {"learn_only_when_charging": True, "enabled_sources": ["calendar"]}
    back = twin(data, "init", "--on-any-power", "--no-elevation", "--timezone", "device")
    assert back["preferences"]["learn_only_when_charging"] is False
    assert back["preferences"]["allow_elevation"] is False
    assert back["preferences"]["timezone"] is None
    assert back["preferences"]["max_data_retention_hours"] == 6


def test_learn_numbers_cycles_and_counts_events_not_slots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOGMESH_PROFILE", "desktop")
    data = tmp_path / "twin"
    events = []
    for day in range(2, 9):
        events += [
            "BEGIN:VEVENT",
            f"UID:e{day}",
            f"DTSTART:202611{day:02d}T090000Z",
            f"DTEND:202611{day:02d}T110000Z",
            "SUMMARY:standup",
            "END:VEVENT",
        ]
    ics = tmp_path / "cal.ics"
    ics.write_text("\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", *events, "END:VCALENDAR"]))
    usage = tmp_path / "usage.csv"
    usage.write_text(USAGE)
    twin(data, "consent", "grant", "calendar")
    twin(data, "consent", "grant", "app_usage")
    twin(data, "ingest", "--source", "calendar", str(ics))
    first = twin(data, "learn")
    assert first["cycle"] == 1 and first["learned"] is True
    cal = first["per_source"]["calendar"]
    assert cal["records"] == 7 and cal["samples"] > 7  # 7 events, one sample per hour of span
    assert "7 calendar events" in first["reason"]
    idle = runner.invoke(app, ["twin", "learn", "--data-dir", str(data)])
    assert idle.exit_code == 0 and "no cycle run (1 so far)" in idle.output
    twin(data, "ingest", "--source", "app_usage", str(usage))
    second = runner.invoke(app, ["twin", "learn", "--data-dir", str(data)])
    assert second.exit_code == 0 and second.output.startswith("cycle 2:"), second.output
    assert "4 app openings" in second.output
