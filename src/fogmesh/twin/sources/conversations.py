"""Conversations: WhatsApp-style text exports and JSONL (``timestamp``, ``sender``, ``text``).

WhatsApp writes ``31/12/2023, 21:15 - Name: text`` (Android) or
``[31/12/2023, 21:15:03] Name: text`` (iOS); a line that does not start a message continues the
previous one. Dates are read day-first unless the day cannot be a day (e.g. ``12/31/23``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from fogmesh.twin.prefs import DataSource, Record
from fogmesh.twin.sources._common import ImportReport, RowError, local_time, parse_time

__all__ = ["parse_jsonl", "parse_whatsapp"]

_MESSAGE = re.compile(
    r"^\[?(?P<date>\d{1,2}/\d{1,2}/\d{2,4}),?\s+(?P<time>\d{1,2}:\d{2}(?::\d{2})?)"
    r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?\]?\s*(?:-\s*)?(?P<sender>[^:]{1,80}):\s(?P<text>.*)$"
)
_SYSTEM = re.compile(r"^\[?\d{1,2}/\d{1,2}/\d{2,4},?\s+\d{1,2}:\d{2}")


def _when(day: str, clock: str, ampm: str | None) -> float:
    a, b, year = (int(p) for p in day.split("/"))
    day_n, month = (b, a) if a <= 12 < b else (a, b)
    if year < 100:
        year += 2000
    parts = [int(p) for p in clock.split(":")]
    hour = parts[0]
    if ampm:
        pm = ampm.lower().startswith("p")
        hour = hour % 12 + (12 if pm else 0)
    second = parts[2] if len(parts) > 2 else 0
    # The export shows the phone's wall clock: read it in the owner's zone.
    return local_time(datetime(year, month, day_n, hour, parts[1], second)).timestamp()


def parse_whatsapp(text: str, name: str = "") -> ImportReport:
    report = ImportReport(DataSource.CONVERSATIONS)
    last: Record | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.replace("\u200e", "").rstrip()
        if not line:
            continue
        match = _MESSAGE.match(line)
        if match is None:
            if _SYSTEM.match(line):
                continue  # "Messages are end-to-end encrypted", joins, and the like
            if last is None:
                report.errors.append(RowError(number, "text before the first message"))
                continue
            last.data["text"] += "\n" + line
            continue
        try:
            when = _when(match["date"], match["time"], match["ampm"])
        except ValueError as exc:
            report.errors.append(RowError(number, f"bad date or time: {exc}"))
            continue
        last = Record(
            DataSource.CONVERSATIONS,
            when,
            {"sender": match["sender"].strip(), "text": match["text"]},
        )
        report.records.append(last)
    return report


def parse_jsonl(text: str, name: str = "") -> ImportReport:
    report = ImportReport(DataSource.CONVERSATIONS)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
            body = item.get("text")
            if not isinstance(body, str):
                raise ValueError("no text")
            when = parse_time(str(item["timestamp"]))
            sender = str(item.get("sender", ""))
        except (ValueError, KeyError) as exc:
            report.errors.append(RowError(number, str(exc)))
            continue
        report.records.append(
            Record(DataSource.CONVERSATIONS, when, {"sender": sender, "text": body})
        )
    return report
