"""Numbers as people read them in human output (``--json`` keeps the exact values)."""

from __future__ import annotations

from typing import Any

__all__ = ["celsius", "percent"]

ABSENT = "—"


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
