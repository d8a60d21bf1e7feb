"""Importers for real export formats. Each parses the whole file before anything is stored, so a
file is imported entirely (minus the rows it reports, with their line numbers) or not at all."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path

from fogmesh.errors import TwinError
from fogmesh.twin.prefs import DataSource
from fogmesh.twin.sources._common import ImportReport, RowError, naive_times_in, parse_time
from fogmesh.twin.sources.calendar import parse_ics
from fogmesh.twin.sources.conversations import parse_jsonl, parse_whatsapp
from fogmesh.twin.sources.location import parse_gpx, parse_takeout, place_of
from fogmesh.twin.sources.tabular import parse_app_usage, parse_purchases

__all__ = [
    "ImportReport",
    "RowError",
    "naive_times_in",
    "parse_app_usage",
    "parse_file",
    "parse_gpx",
    "parse_ics",
    "parse_jsonl",
    "parse_purchases",
    "parse_takeout",
    "parse_text",
    "parse_time",
    "parse_whatsapp",
    "place_of",
]


def parse_text(source: DataSource, text: str, name: str) -> ImportReport:
    """Pick the format from the source and the file name (suffix, or a peek at the content)."""
    lower = name.lower()
    if source is DataSource.APP_USAGE:
        return parse_app_usage(text, lower)
    if source is DataSource.PURCHASES:
        return parse_purchases(text, lower)
    if source is DataSource.CALENDAR:
        return parse_ics(text, lower)
    if source is DataSource.LOCATION:
        if lower.endswith(".json") or text.lstrip().startswith("{"):
            return parse_takeout(text, lower)
        return parse_gpx(text, lower)
    if lower.endswith(".jsonl") or text.lstrip().startswith("{"):
        return parse_jsonl(text, lower)
    return parse_whatsapp(text, lower)


def parse_file(source: DataSource, path: Path, *, tz: tzinfo | None = None) -> ImportReport:
    """Parse one export file; times written without a zone are read in ``tz`` (UTC if None)."""
    if tz is not None:
        with naive_times_in(tz):
            return parse_file(source, path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TwinError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise TwinError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        return parse_text(source, text, Path(path).name)
    except TwinError as exc:
        raise TwinError(f"{path}: {exc.reason}") from exc
