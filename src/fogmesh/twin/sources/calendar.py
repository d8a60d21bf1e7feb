"""iCalendar (.ics) events via ``icalendar``: start, end, summary, location."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import icalendar

from fogmesh.errors import TwinError
from fogmesh.twin.prefs import DataSource, Record
from fogmesh.twin.sources._common import ImportReport, RowError, local_time

__all__ = ["parse_ics"]

_BEGIN = re.compile(r"^BEGIN:VEVENT\s*$", re.MULTILINE)


def _epoch(value: Any) -> float:
    moment = getattr(value, "dt", value)
    if isinstance(moment, datetime):
        return local_time(moment).timestamp()  # a "floating" time is the owner's wall clock
    if isinstance(moment, date):  # all-day: from the owner's midnight
        return local_time(datetime(moment.year, moment.month, moment.day)).timestamp()
    raise ValueError("missing or unreadable date")


def parse_ics(text: str, name: str = "") -> ImportReport:
    # icalendar does not keep positions, so events are matched to their BEGIN lines in order.
    lines = [text.count("\n", 0, m.start()) + 1 for m in _BEGIN.finditer(text)]
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise TwinError(f"not a readable iCalendar file ({exc})") from exc
    report = ImportReport(DataSource.CALENDAR)
    for position, event in enumerate(calendar.walk("VEVENT")):
        line = lines[position] if position < len(lines) else 0
        try:
            start = _epoch(event.get("DTSTART"))
            if event.get("DTEND") is not None:
                end = _epoch(event.get("DTEND"))
            elif event.get("DURATION") is not None:
                end = start + event.get("DURATION").dt.total_seconds()
            else:
                end = start + timedelta(hours=1).total_seconds()
            if end < start:
                raise ValueError("event ends before it starts")
        except (ValueError, TypeError, AttributeError) as exc:
            report.errors.append(RowError(line, f"event skipped: {exc}"))
            continue
        data = {
            "summary": str(event.get("SUMMARY", "")),
            "location": str(event.get("LOCATION", "")),
            "end": end,
        }
        report.records.append(Record(DataSource.CALENDAR, start, data))
    return report
