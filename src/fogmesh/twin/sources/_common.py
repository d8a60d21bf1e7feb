"""Shared pieces of the importers: the report, row errors and timestamp parsing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from fogmesh.twin.prefs import DataSource, Record

__all__ = ["ImportReport", "RowError", "local_time", "naive_times_in", "parse_time"]

# The zone a timestamp without one is read in. Exports write the phone's wall clock without a
# zone (WhatsApp, many CSVs, floating iCalendar times), so the concierge sets the owner's zone
# around an import; outside one, naive times are UTC.
_NAIVE_ZONE: ContextVar[tzinfo] = ContextVar("naive_zone", default=UTC)


@contextmanager
def naive_times_in(tz: tzinfo) -> Iterator[None]:
    """Read timestamps that carry no zone as wall-clock times in ``tz`` inside this block."""
    token = _NAIVE_ZONE.set(tz)
    try:
        yield
    finally:
        _NAIVE_ZONE.reset(token)


def local_time(moment: datetime) -> datetime:
    """``moment`` with the import's zone attached if it has none (see ``naive_times_in``)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_NAIVE_ZONE.get())


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # 1-based line in the file (for JSON arrays: the entry's position)
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass(slots=True)
class ImportReport:
    """Parsed records and the rows that were skipped, with why."""

    source: DataSource
    records: list[Record] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    stored: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "parsed": len(self.records),
            "stored": self.stored,
            "skipped": [e.to_dict() for e in self.errors],
        }


def parse_time(text: str) -> float:
    """Epoch seconds from ISO 8601 (naive: in the import's zone, UTC by default) or epoch
    seconds/milliseconds."""
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        # Android usage-stats and Takeout use milliseconds; nothing real is dated after 5138 AD.
        return number / 1000.0 if number > 1e11 else number
    return local_time(datetime.fromisoformat(value.replace("Z", "+00:00"))).timestamp()
