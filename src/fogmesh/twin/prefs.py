"""What the owner allows: data sources, how long raw data may stay, and how private releases are."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

from fogmesh.errors import ConfigError

__all__ = ["PRIVACY_MODES", "DataSource", "Record", "UserPreferences", "parse_source"]

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


@dataclass(frozen=True, slots=True)
class UserPreferences:
    """The seed's preferences. Retention is 1–24 hours (the seed's range); privacy modes are
    described in docs/twin.md.

    ``learn_only_when_charging`` defers learning cycles while the device runs on battery.
    ``delete_after_learning`` deletes a source's raw records as soon as a cycle has learnt them
    (the seed's "automatic deletion after training cycles"), on top of the retention window.
    ``allow_elevation`` is the separate consent to offer anonymised, noised knowledge to the
    coordinator's global store; it is off unless the owner turns it on.
    """

    enabled_sources: frozenset[DataSource] = field(default_factory=frozenset)
    max_data_retention_hours: int = 24
    privacy_mode: PrivacyMode = "balanced"
    learn_only_when_charging: bool = False
    allow_elevation: bool = False
    delete_after_learning: bool = False

    def __init__(
        self,
        enabled_sources: Iterable[DataSource | str] = (),
        max_data_retention_hours: int = 24,
        privacy_mode: str = "balanced",
        learn_only_when_charging: bool = False,
        allow_elevation: bool = False,
        delete_after_learning: bool = False,
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
        }


@dataclass(frozen=True, slots=True)
class Record:
    """One observation from a source: when it happened and what it was (JSON-able fields)."""

    source: DataSource
    timestamp: float
    data: dict[str, Any]
