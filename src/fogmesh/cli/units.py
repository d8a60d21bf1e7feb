"""Numbers as people read them in human output (``--json`` keeps the exact values)."""

from __future__ import annotations

import re
from typing import Any

from fogmesh.errors import ConfigError

__all__ = ["MAX_TTL", "celsius", "parse_duration", "percent"]

ABSENT = "—"
MAX_TTL = 30 * 86_400.0  # the longest a join token or REST ticket may live
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def percent(value: Any) -> str:
    """``57%``; one decimal under 10 (``7.5%``, ``0.4%``) where a whole number would hide it."""
    number = _number(value)
    if number is None:
        return ABSENT
    text = f"{number:.1f}" if abs(number) < 10 else f"{number:.0f}"
    return f"{text.removesuffix('.0')}%"


def celsius(value: Any) -> str:
    """``58 °C``: sensors report hundredths no one needs."""
    number = _number(value)
    return ABSENT if number is None else f"{number:.0f} °C"


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``24h`` or ``7d``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ConfigError(
            f"cannot read {text!r} as a duration (e.g. 90s, 15m, 24h, 7d)", field="--ttl"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_TTL:
        raise ConfigError("must be more than 0 and at most 30d", field="--ttl")
    return seconds
