"""Shared pieces of the importers: the report, row errors and timestamp parsing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fogmesh.twin.prefs import DataSource, Record

__all__ = ["ImportReport", "RowError", "parse_time"]


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
    """Epoch seconds from ISO 8601 (naive means UTC) or epoch seconds/milliseconds."""
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
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
