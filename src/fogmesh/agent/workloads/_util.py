"""Shared helpers: canonical checksums and argument checks for the built-in workloads."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from fogmesh.errors import InvalidRequest

__all__ = ["check_range", "checksum"]


def checksum(value: Any) -> str:
    """SHA-256 (hex, first 16 chars) of ``value`` as sorted-key JSON: same input, same sum."""
    return hashlib.sha256(msgspec.json.encode(value, order="sorted")).hexdigest()[:16]


def check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be a number in [{low:g}, {high:g}]", field=name)
