"""How big each piece of a tensor or model transfer may be on this device right now.

The size starts from a per-device-class base and is divided by ``pressure_divisor`` once per
level of battery, thermal and memory pressure, then clamped to ``[min_chunk_size,
max_chunk_size]``. With the default policy that spans the seed's whole 64–2048 byte range: a cool
desktop on mains gets 2048, a phone (capped at 512) with a critical battery and critical heat
gets 64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fogmesh.errors import ConfigError

__all__ = ["ChunkingConfig"]


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    base_chunk_size: int = 2048  # bytes, before any pressure
    min_chunk_size: int = 64
    max_chunk_size: int = 2048  # the device-class ceiling (512 for phones and tablets)
    battery_pressure: int = 0  # 0–3: effective battery band (charging relaxes it)
    thermal_pressure: int = 0  # 0–3: thermal band
    memory_pressure: int = 0  # 0–2: memory band
    pressure_divisor: float = 2.0  # each pressure level divides the size by this
    _effective: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("base_chunk_size", "min_chunk_size", "max_chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be a positive integer, not {value!r}", field=name)
        if self.min_chunk_size > self.max_chunk_size:
            raise ConfigError(
                f"must be ≤ max_chunk_size ({self.max_chunk_size})", field="min_chunk_size"
            )
        for name in ("battery_pressure", "thermal_pressure", "memory_pressure"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
                raise ConfigError(f"must be an integer 0–3, not {value!r}", field=name)
        divisor = self.pressure_divisor
        if (
            isinstance(divisor, bool)
            or not isinstance(divisor, int | float)
            or not math.isfinite(divisor)
            or divisor < 1
        ):
            raise ConfigError(f"must be a number ≥ 1, not {divisor!r}", field="pressure_divisor")
        levels = self.battery_pressure + self.thermal_pressure + self.memory_pressure
        size = int(self.base_chunk_size / divisor**levels)
        object.__setattr__(
            self, "_effective", max(self.min_chunk_size, min(self.max_chunk_size, size))
        )

    def effective_chunk_size(self) -> int:
        """Bytes per chunk, always within ``[min_chunk_size, max_chunk_size]``."""
        return self._effective

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_chunk_size": self.base_chunk_size,
            "min_chunk_size": self.min_chunk_size,
            "max_chunk_size": self.max_chunk_size,
            "battery_pressure": self.battery_pressure,
            "thermal_pressure": self.thermal_pressure,
            "memory_pressure": self.memory_pressure,
            "pressure_divisor": self.pressure_divisor,
            "effective_chunk_size": self._effective,
        }
