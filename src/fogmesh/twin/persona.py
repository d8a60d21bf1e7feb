"""A SYNTHETIC persona: generated weekly routines with noise, for the demo, tests and benchmarks.

Nothing here was collected from anyone. The generator exists because a learner can only be
checked against data with known structure: apps follow time-of-day activities (waking up,
commuting, working, lunch, evening, night) whose app chains depend on the previous app, places
follow a weekday/weekend schedule, purchases and meetings follow habits. Every random choice comes
from a seeded ``random.Random``, so a persona is reproducible.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from fogmesh.twin.prefs import DataSource, Record
from fogmesh.twin.sources.location import place_of

__all__ = ["SYNTHETIC_LABEL", "Persona", "export_files", "synthetic_persona"]

SYNTHETIC_LABEL: Final = "synthetic persona (generated, not collected)"

# Each activity: the app chain its sessions tend to follow, and how many opens per hour.
_ACTIVITIES: Final[dict[str, tuple[tuple[str, ...], int]]] = {
    "wake": (("clock", "weather", "news", "email", "messages"), 8),
    "commute": (("maps", "music", "podcasts", "messages", "news"), 6),
    "work": (("email", "slack", "calendar", "docs", "browser", "slack"), 10),
    "lunch": (("food", "social", "messages", "banking", "video"), 7),
    "evening": (("messages", "video", "social", "music", "games"), 8),
    "night": (("ebook", "messages", "clock"), 3),
    "weekend": (("camera", "social", "maps", "shopping", "fitness", "messages"), 6),
}
_ALL_APPS: Final = tuple(sorted({a for chain, _ in _ACTIVITIES.values() for a in chain}))
# Centres sit well inside their ~1 km cells (see place_of), so jitter never crosses a boundary.
_PLACES: Final = {
    "home": (52.3702, 4.8982),
    "office": (52.3380, 4.8720),
    "gym": (52.3600, 4.9200),
    "cafe": (52.3780, 4.8830),
    "park": (52.3580, 4.8686),
    "grocery": (52.3660, 4.9040),
}


def _activity(hour: int, weekend: bool) -> str | None:
    if weekend:
        if hour < 9 or hour >= 24:
            return None
        return (
            "wake"
            if hour == 9
            else "night"
            if hour >= 22
            else "evening"
            if hour >= 19
            else ("weekend")
        )
    if hour < 7:
        return None
    table = {7: "wake", 8: "commute", 12: "lunch", 17: "commute", 18: "evening"}
    if hour in table:
        return table[hour]
    if 9 <= hour < 17:
        return "work"
    return "night" if hour >= 22 else "evening"


def _place(hour: int, weekday: int) -> str:
    if weekday >= 5:
        if weekday == 5 and 10 <= hour < 12:
            return "grocery"
        return "park" if 14 <= hour < 17 else "home"
    if hour == 8:
        return "cafe"
    if 9 <= hour < 17:
        return "office"
    if hour == 18 and weekday in (0, 2, 4):
        return "gym"
    return "home"


@dataclass(slots=True)
class Persona:
    """Records per source, oldest first; ``label`` says they are synthetic."""

    records: dict[DataSource, list[Record]] = field(default_factory=dict)
    label: str = SYNTHETIC_LABEL

    def all(self) -> list[Record]:
        out = [r for rs in self.records.values() for r in rs]
        out.sort(key=lambda r: r.timestamp)
        return out


def synthetic_persona(
    days: int = 14, *, seed: int = 0, start: float | None = None, busy: float = 1.0
) -> Persona:
    """``days`` of a generated person's life starting at midnight UTC of ``start`` (a Monday
    by default). ``busy`` scales how often apps are opened."""
    rng = random.Random(seed)
    if start is None:
        start = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # a Monday
    day0 = float(int(start) - int(start) % 86_400)
    apps: list[Record] = []
    places: list[Record] = []
    buys: list[Record] = []
    meetings: list[Record] = []
    chats: list[Record] = []
    previous = "clock"
    for day in range(days):
        base = day0 + day * 86_400
        weekday = datetime.fromtimestamp(base, UTC).weekday()
        weekend = weekday >= 5
        for hour in range(24):
            hour_start = base + hour * 3600
            # location every 30 minutes, jittered well inside the ~1 km place cell
            lat, lon = _PLACES[_place(hour, weekday)]
            for half in (0, 1800):
                jl, jo = rng.uniform(-3e-4, 3e-4), rng.uniform(-3e-4, 3e-4)
                when = hour_start + half + rng.uniform(0, 600)
                data = {"lat": lat + jl, "lon": lon + jo, "place": place_of(lat + jl, lon + jo)}
                places.append(Record(DataSource.LOCATION, when, data))
            activity = _activity(hour, weekend)
            if activity is None:
                continue
            chain, per_hour = _ACTIVITIES[activity]
            opens = max(1, round(rng.gauss(per_hour * busy, 1.5)))
            stamps = sorted(rng.uniform(0, 3600) for _ in range(opens))
            for offset in stamps:
                roll = rng.random()
                if roll < 0.12:
                    app = rng.choice(_ALL_APPS)  # noise: anything, any time
                elif previous in chain and roll < 0.75:
                    app = chain[(chain.index(previous) + 1) % len(chain)]
                else:
                    app = rng.choice(chain)
                apps.append(Record(DataSource.APP_USAGE, hour_start + offset, {"app": app}))
                previous = app
        # habits: coffee, lunch, groceries, evening online shopping
        if not weekend:
            buys.append(_buy(rng, base + 8 * 3600, "Corner Cafe", "coffee", 3.2))
            buys.append(_buy(rng, base + 12.5 * 3600, "Noodle Bar", "food", 11.5))
            meetings.append(_meeting(base + 9.5 * 3600, 900, "Team standup", "office"))
            for _ in range(rng.randint(1, 3)):
                h = rng.choice((10, 11, 13, 14, 15, 16))
                meetings.append(_meeting(base + h * 3600, 3600, "Project sync", "office"))
        elif weekday == 5:
            buys.append(_buy(rng, base + 10.5 * 3600, "FreshMart", "groceries", 64.0))
        if rng.random() < 0.4:
            buys.append(_buy(rng, base + 21 * 3600, "WebShop", "shopping", 35.0))
        for _ in range(rng.randint(3, 8)):
            when = base + rng.uniform(8, 23) * 3600
            text = rng.choice(_CHAT_LINES)
            chats.append(Record(DataSource.CONVERSATIONS, when, {"sender": "Sam", "text": text}))
    persona = Persona()
    for source, items in (
        (DataSource.APP_USAGE, apps),
        (DataSource.LOCATION, places),
        (DataSource.PURCHASES, buys),
        (DataSource.CALENDAR, meetings),
        (DataSource.CONVERSATIONS, chats),
    ):
        items.sort(key=lambda r: r.timestamp)
        persona.records[source] = items
    return persona


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ics_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def export_files(persona: Persona, directory: Path) -> dict[DataSource, Path]:
    """Write the persona as the export files the importers read (app-usage CSV, purchases CSV,
    .ics, GPX, JSONL), each marked synthetic where its format allows a comment or field."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        DataSource.APP_USAGE: directory / "synthetic-app-usage.csv",
        DataSource.PURCHASES: directory / "synthetic-purchases.csv",
        DataSource.CALENDAR: directory / "synthetic-calendar.ics",
        DataSource.LOCATION: directory / "synthetic-location.gpx",
        DataSource.CONVERSATIONS: directory / "synthetic-conversations.jsonl",
    }
    records = persona.records
    with paths[DataSource.APP_USAGE].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "app", "event"])
        out.writerows(
            [_iso(r.timestamp), r.data["app"], "opened"]
            for r in records.get(DataSource.APP_USAGE, [])
        )
    with paths[DataSource.PURCHASES].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["date", "merchant", "amount", "category"])
        out.writerows(
            [_iso(r.timestamp), r.data["merchant"], f"{r.data['amount']:.2f}", r.data["category"]]
            for r in records.get(DataSource.PURCHASES, [])
        )
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:-//fogmesh//{SYNTHETIC_LABEL}//EN"]
    for n, r in enumerate(records.get(DataSource.CALENDAR, [])):
        lines += [
            "BEGIN:VEVENT",
            f"UID:synthetic-{n}@fogmesh",
            f"DTSTAMP:{_ics_time(r.timestamp)}",
            f"DTSTART:{_ics_time(r.timestamp)}",
            f"DTEND:{_ics_time(float(r.data['end']))}",
            f"SUMMARY:{r.data['summary']}",
            f"LOCATION:{r.data['location']}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    paths[DataSource.CALENDAR].write_text("\r\n".join(lines) + "\r\n")
    points = "".join(
        f'<trkpt lat="{r.data["lat"]:.6f}" lon="{r.data["lon"]:.6f}">'
        f"<time>{_iso(r.timestamp)}</time></trkpt>\n"
        for r in records.get(DataSource.LOCATION, [])
    )
    paths[DataSource.LOCATION].write_text(
        '<?xml version="1.0"?>\n'
        f'<gpx version="1.1" creator="fogmesh: {SYNTHETIC_LABEL}" '
        'xmlns="http://www.topografix.com/GPX/1/1">\n'
        f"<trk><trkseg>\n{points}</trkseg></trk>\n</gpx>\n"
    )
    paths[DataSource.CONVERSATIONS].write_text(
        "".join(
            json.dumps({"timestamp": _iso(r.timestamp), "synthetic": True, **r.data}) + "\n"
            for r in records.get(DataSource.CONVERSATIONS, [])
        )
    )
    return paths


def _buy(rng: random.Random, when: float, merchant: str, category: str, mean: float) -> Record:
    amount = round(max(0.5, rng.gauss(mean, mean * 0.15)), 2)
    data = {"merchant": merchant, "amount": amount, "category": category}
    return Record(DataSource.PURCHASES, when + rng.uniform(-900, 900), data)


def _meeting(when: float, length: float, summary: str, location: str) -> Record:
    data = {"summary": summary, "location": location, "end": when + length}
    return Record(DataSource.CALENDAR, when, data)


_CHAT_LINES: Final = (
    "running ten minutes late, save me a seat",
    "dinner at the noodle bar on friday?",
    "can you pick up milk and bread on the way home",
    "the gym class moved to 6:30 tomorrow",
    "sending the slides for the project sync now",
    "happy birthday! drinks at the park on saturday",
    "did you book the train tickets for the weekend",
    "the plumber comes thursday morning between 8 and 10",
)
