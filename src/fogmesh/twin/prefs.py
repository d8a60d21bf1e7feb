"""What the owner allows: data sources, how long raw data may stay, and how private releases are."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fogmesh.errors import ConfigError

__all__ = [
    "PRIVACY_MODES",
    "DataSource",
    "Record",
    "UserPreferences",
    "local_zone_name",
    "parse_source",
    "zone",
]

PRIVACY_MODES: Final = ("strict", "balanced", "open")
PrivacyMode = Literal["strict", "balanced", "open"]


class DataSource(StrEnum):
    CONVERSATIONS = "conversations"
    APP_USAGE = "app_usage"
    CALENDAR = "calendar"
    LOCATION = "location"
    PURCHASES = "purchases"


def parse_source(name: str | DataSource) -> DataSource:
    """A source by its name (``app_usage``, ``app-usage`` or ``APP_USAGE``)."""
    if isinstance(name, DataSource):
        return name
    key = str(name).strip().lower().replace("-", "_")
    try:
        return DataSource(key)
    except ValueError:
        known = ", ".join(s.value for s in DataSource)
        raise ConfigError(
            f"unknown data source {name!r} (known: {known})", field="source"
        ) from None


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Amsterdam``), or a ConfigError saying why not."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Amsterdam or UTC",
            field="timezone",
        ) from None


def _zone_key_of(path: str) -> str | None:
    # /usr/share/zoneinfo/Europe/Amsterdam (or a symlink to it) → Europe/Amsterdam
    marker = "zoneinfo/"
    resolved = str(Path(path).resolve()) if os.path.exists(path) else path
    for candidate in (resolved, path):
        if marker in candidate:
            return candidate.split(marker, 1)[1]
    return None


def local_zone_name() -> str:
    """The device's own IANA zone: ``$TZ`` if it names one, else where ``/etc/localtime``
    points, else ``/etc/timezone``; ``UTC`` when none of them says (a container, say)."""
    candidates: list[str | None] = []
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        candidates.append(_zone_key_of(tz) if tz.startswith("/") else tz)
    candidates.append(_zone_key_of("/etc/localtime"))
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip() or None)
    for name in candidates:
        if not name:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
        return name
    return "UTC"


@dataclass(frozen=True, slots=True)
class UserPreferences:
    """The seed's preferences. Retention is 1–24 hours (the seed's range); privacy modes are
    described in docs/twin.md.

    ``learn_only_when_charging`` defers learning cycles while the device runs on battery.
    ``delete_after_learning`` deletes a source's raw records as soon as a cycle has learnt them
    (the seed's "automatic deletion after training cycles"), on top of the retention window.
    ``allow_elevation`` is the separate consent to offer anonymised, noised knowledge to the
    coordinator's global store; it is off unless the owner turns it on.
    ``timezone`` is the IANA zone the owner's routine runs in (the learner reads hours and
    weekdays in it); ``None`` follows the device's zone, resolved each time the twin opens, as
    a phone's clock follows its owner across zones.
    ``embeddings`` turns on hybrid (BM25 + embedding) search in the mini-RAG; it needs the
    ``embeddings`` extra (docs/twin.md §8).
    """

    enabled_sources: frozenset[DataSource] = field(default_factory=frozenset)
    max_data_retention_hours: int = 24
    privacy_mode: PrivacyMode = "balanced"
    learn_only_when_charging: bool = False
    allow_elevation: bool = False
    delete_after_learning: bool = False
    timezone: str | None = None
    embeddings: bool = False

    def __init__(
        self,
        enabled_sources: Iterable[DataSource | str] = (),
        max_data_retention_hours: int = 24,
        privacy_mode: str = "balanced",
        learn_only_when_charging: bool = False,
        allow_elevation: bool = False,
        delete_after_learning: bool = False,
        timezone: str | None = None,
        embeddings: bool = False,
    ) -> None:
        sources = frozenset(parse_source(s) for s in enabled_sources)
        hours = max_data_retention_hours
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24:
            raise ConfigError(
                f"must be a whole number of hours from 1 to 24, not {hours!r}",
                field="max_data_retention_hours",
            )
        if privacy_mode not in PRIVACY_MODES:
            raise ConfigError(
                f"must be one of {', '.join(PRIVACY_MODES)}, not {privacy_mode!r}",
                field="privacy_mode",
            )
        object.__setattr__(self, "enabled_sources", sources)
        object.__setattr__(self, "max_data_retention_hours", hours)
        object.__setattr__(self, "privacy_mode", privacy_mode)
        object.__setattr__(self, "learn_only_when_charging", bool(learn_only_when_charging))
        object.__setattr__(self, "allow_elevation", bool(allow_elevation))
        object.__setattr__(self, "delete_after_learning", bool(delete_after_learning))
        if timezone is not None:
            if not isinstance(timezone, str) or not timezone.strip():
                raise ConfigError(f"must be an IANA zone name, not {timezone!r}", field="timezone")
            timezone = zone(timezone.strip()).key
        object.__setattr__(self, "timezone", timezone)
        object.__setattr__(self, "embeddings", bool(embeddings))

    @property
    def retention_seconds(self) -> float:
        return self.max_data_retention_hours * 3600.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled_sources": sorted(s.value for s in self.enabled_sources),
            "max_data_retention_hours": self.max_data_retention_hours,
            "privacy_mode": self.privacy_mode,
            "learn_only_when_charging": self.learn_only_when_charging,
            "allow_elevation": self.allow_elevation,
            "delete_after_learning": self.delete_after_learning,
            "timezone": self.timezone,
            "embeddings": self.embeddings,
        }

    def zone_name(self) -> str:
        """The zone in force: the one set, else the device's own (``local_zone_name``)."""
        return self.timezone or local_zone_name()


@dataclass(frozen=True, slots=True)
class Record:
    """One observation from a source: when it happened and what it was (JSON-able fields).

    ``seq`` and ``ref`` are set only on records read back from the vault: ``seq`` is the
    vault's ingestion sequence number (monotonic, never reused), which the learner's watermark
    follows so that a record imported late — last week's calendar after today's app usage — is
    still learnt exactly once; ``ref`` is the vault row id. Neither takes part in equality.
    """

    source: DataSource
    timestamp: float
    data: dict[str, Any]
    seq: int | None = field(default=None, compare=False)
    ref: str | None = field(default=None, compare=False)
