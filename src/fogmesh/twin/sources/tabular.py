"""CSV/TSV importers: app usage (timestamp, app, event) and purchases (date, merchant, amount,
category).

App usage accepts Android usage-stats style exports and the LSApp research format (columns
``timestamp``/``time``, ``app``/``app_name``/``package``, optional ``event``/``event_type``).
Only foreground events (or rows without an event column) become records, because the learner
predicts which app the owner opens next.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from typing import Any

from fogmesh.errors import TwinError
from fogmesh.twin.prefs import DataSource, Record
from fogmesh.twin.sources._common import ImportReport, RowError, parse_time

__all__ = ["parse_app_usage", "parse_purchases"]

_TIME = ("timestamp", "time", "datetime", "date")
_APP = ("app", "app_name", "package", "package_name")
_EVENT = ("event", "event_type", "type")
# Events that mean "the app came to the foreground"; others (paused, stopped) are not launches.
_OPENED = {"opened", "open", "resumed", "activity_resumed", "move_to_foreground", "1", "foreground"}
_IGNORED = {"closed", "close", "paused", "activity_paused", "move_to_background", "2", "stopped"}


def _column(header: Sequence[str], names: Sequence[str], required: bool, what: str) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    if required:
        raise TwinError(f"no {what} column (expected one of: {', '.join(names)})")
    return None


def _rows(text: str, name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if name.endswith(".tsv") or "\t" in first else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise TwinError("the file is empty") from None
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise TwinError(f"line {reader.line_num}: unreadable CSV ({exc})") from exc
    return header, rows


def _each(
    report: ImportReport,
    rows: list[tuple[int, list[str]]],
    width: int,
    build: Callable[[list[str]], Record | None],
) -> None:
    for line, row in rows:
        if len(row) < width:
            report.errors.append(RowError(line, f"expected {width} columns, found {len(row)}"))
            continue
        try:
            record = build(row)
        except (ValueError, KeyError) as exc:
            report.errors.append(RowError(line, str(exc) or type(exc).__name__))
            continue
        if record is not None:
            report.records.append(record)


def parse_app_usage(text: str, name: str = "") -> ImportReport:
    header, rows = _rows(text, name)
    t = _column(header, _TIME, True, "timestamp")
    a = _column(header, _APP, True, "app")
    e = _column(header, _EVENT, False, "event")
    assert t is not None and a is not None
    report = ImportReport(DataSource.APP_USAGE)
    width = max(i for i in (t, a, e) if i is not None) + 1

    def build(row: list[str]) -> Record | None:
        app = row[a].strip()
        if not app:
            raise ValueError("empty app name")
        when = parse_time(row[t])
        if e is not None:
            event = row[e].strip().lower()
            if event in _IGNORED:
                return None
            if event not in _OPENED:
                raise ValueError(f"unknown event {row[e]!r}")
        return Record(DataSource.APP_USAGE, when, {"app": app})

    _each(report, rows, width, build)
    return report


def parse_purchases(text: str, name: str = "") -> ImportReport:
    header, rows = _rows(text, name)
    cols = {
        key: _column(header, names, True, key)
        for key, names in (
            ("date", ("date", "timestamp", "time")),
            ("merchant", ("merchant", "payee", "description")),
            ("amount", ("amount", "total", "price")),
            ("category", ("category",)),
        )
    }
    idx: dict[str, int] = {k: v for k, v in cols.items() if v is not None}
    report = ImportReport(DataSource.PURCHASES)

    def build(row: list[str]) -> Record:
        amount = float(row[idx["amount"]].strip().replace("$", "").replace("€", ""))
        if not math.isfinite(amount):
            raise ValueError("amount is not a number")
        category = row[idx["category"]].strip().lower()
        if not category:
            raise ValueError("empty category")
        data: dict[str, Any] = {
            "merchant": row[idx["merchant"]].strip(),
            "amount": amount,
            "category": category,
        }
        return Record(DataSource.PURCHASES, parse_time(row[idx["date"]]), data)

    _each(report, rows, max(idx.values()) + 1, build)
    return report
