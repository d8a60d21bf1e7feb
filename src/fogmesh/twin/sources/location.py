"""Location: GPX track/way points, and Google Takeout location JSON.

A point becomes a *place*: a grid cell of about 1 km (coordinates rounded to two decimals),
which is what the learner predicts. The exact coordinates stay sealed in the record.
"""

from __future__ import annotations

import json
import math
from typing import Any
from xml.parsers import expat

from fogmesh.errors import TwinError
from fogmesh.twin.prefs import DataSource, Record
from fogmesh.twin.sources._common import ImportReport, RowError, parse_time

__all__ = ["parse_gpx", "parse_takeout", "place_of"]


def place_of(lat: float, lon: float) -> str:
    return f"{lat:.2f},{lon:.2f}"


def _point(lat: float, lon: float, when: float) -> Record:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("coordinates out of range")
    return Record(DataSource.LOCATION, when, {"lat": lat, "lon": lon, "place": place_of(lat, lon)})


def parse_gpx(text: str, name: str = "") -> ImportReport:
    report = ImportReport(DataSource.LOCATION)
    parser = expat.ParserCreate()
    current: dict[str, Any] | None = None
    in_time = False

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal current, in_time
        local = tag.rsplit(":", 1)[-1]
        if local in ("trkpt", "wpt", "rtept"):
            current = {"line": parser.CurrentLineNumber, "attrs": attrs, "time": ""}
        elif local == "time" and current is not None:
            in_time = True

    def end(tag: str) -> None:
        nonlocal current, in_time
        local = tag.rsplit(":", 1)[-1]
        if local == "time":
            in_time = False
        elif local in ("trkpt", "wpt", "rtept") and current is not None:
            try:
                lat = float(current["attrs"]["lat"])
                lon = float(current["attrs"]["lon"])
                if not current["time"].strip():
                    raise ValueError("point has no time")
                report.records.append(_point(lat, lon, parse_time(current["time"])))
            except (KeyError, ValueError) as exc:
                report.errors.append(RowError(current["line"], f"point skipped: {exc}"))
            current = None

    def chars(data: str) -> None:
        if in_time and current is not None:
            current["time"] += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise TwinError(f"not a readable GPX file ({exc})") from exc
    return report


def parse_takeout(text: str, name: str = "") -> ImportReport:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TwinError(f"not readable JSON (line {exc.lineno}: {exc.msg})") from exc
    entries = document.get("locations") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise TwinError("no 'locations' list (expected a Google Takeout location export)")
    report = ImportReport(DataSource.LOCATION)
    for position, entry in enumerate(entries, start=1):
        try:
            lat = int(entry["latitudeE7"]) / 1e7
            lon = int(entry["longitudeE7"]) / 1e7
            stamp = entry.get("timestamp") or entry.get("timestampMs")
            if stamp is None:
                raise ValueError("no timestamp")
            report.records.append(_point(lat, lon, parse_time(str(stamp))))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            report.errors.append(RowError(position, f"entry skipped: {exc}"))
    return report
