"""Which variant of a model a device should run: a pure decision with its reasons.

``choose_variant(candidates, profile, optimization)`` takes values in and returns a
``VariantChoice``; it reads no clock, file or sensor, so the EdgeManager, the monitoring loop and
tests run the same rule.

The rule, in order:

1. A variant fits when the memory it needs (``RUNTIME_OVERHEAD`` × its file size, plus
   ``RUNTIME_BASE_MB`` for ONNX Runtime itself) is within the device's budget: the smaller of
   the policy's per-task memory limit and the RAM available now (either may be unknown).
2. The preferred variant is ``int8`` for phones, tablets and Raspberry Pis, and for any device in
   ``power_save`` or ``critical`` mode (int8 weights are a quarter of the bytes to move and run
   faster on CPUs without fp32 SIMD headroom); otherwise ``fp32`` (full accuracy where power is
   plentiful).
3. The preferred variant if it is registered and fits; else the other one if it fits; else no
   variant (the reason says what did not fit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from fogmesh.devices.model import DeviceProfile, DeviceType
from fogmesh.mobile.modes import PowerMode
from fogmesh.mobile.policy import ResourceOptimization

__all__ = [
    "RUNTIME_BASE_MB",
    "RUNTIME_OVERHEAD",
    "Variant",
    "VariantChoice",
    "choose_variant",
    "memory_needed_mb",
]

# An ONNX Runtime CPU session holds the weights once more while it optimises the graph and keeps
# an arena for activations; 2× the file plus a fixed runtime cost is a conservative working set
# for the small models (1–10 MB) this project deploys.
RUNTIME_OVERHEAD = 2.0
RUNTIME_BASE_MB = 32

_MIB = 1024 * 1024
_SMALL_DEVICES = frozenset({DeviceType.SMARTPHONE, DeviceType.TABLET, DeviceType.RASPBERRY_PI})
_SAVING_MODES = frozenset({PowerMode.POWER_SAVE, PowerMode.CRITICAL})


class Variant(StrEnum):
    FP32 = "fp32"
    INT8 = "int8"


@dataclass(frozen=True, slots=True)
class VariantChoice:
    variant: Variant | None  # None: nothing registered fits this device now
    reasons: tuple[str, ...]
    budget_mb: int | None  # the memory budget the choice was made against (None: unknown)

    @property
    def text(self) -> str:
        return "; ".join(self.reasons)


def memory_needed_mb(size_bytes: int) -> int:
    """Working memory to load and run a model of ``size_bytes`` in ONNX Runtime."""
    return RUNTIME_BASE_MB + math.ceil(size_bytes * RUNTIME_OVERHEAD / _MIB)


def _budget(profile: DeviceProfile, optimization: ResourceOptimization) -> int | None:
    limits = [v for v in (optimization.memory_limit_mb, profile.ram_available_mb) if v is not None]
    return min(limits) if limits else None


def choose_variant(
    candidates: Mapping[Variant, int],
    profile: DeviceProfile,
    optimization: ResourceOptimization,
) -> VariantChoice:
    """Pick a variant from ``candidates`` (variant → file size in bytes) for this device now."""
    sizes = dict(candidates)
    budget = _budget(profile, optimization)
    reasons: list[str] = []
    mode = optimization.power_mode
    if profile.device_type in _SMALL_DEVICES:
        preferred = Variant.INT8
        reasons.append(f"{profile.device_type.value} prefers int8")
    elif mode in _SAVING_MODES:
        preferred = Variant.INT8
        reasons.append(f"power mode {mode.value} prefers int8")
    else:
        preferred = Variant.FP32
        reasons.append(f"{profile.device_type.value} in {mode.value} mode prefers fp32")
    other = Variant.FP32 if preferred is Variant.INT8 else Variant.INT8

    def fits(variant: Variant) -> bool:
        need = memory_needed_mb(sizes[variant])
        if budget is None or need <= budget:
            return True
        reasons.append(f"{variant.value} needs {need} MB > budget {budget} MB")
        return False

    for variant in (preferred, other):
        if variant not in sizes:
            reasons.append(f"no {variant.value} variant registered")
            continue
        if fits(variant):
            need = memory_needed_mb(sizes[variant])
            budget_text = "budget unknown" if budget is None else f"budget {budget} MB"
            reasons.append(f"chose {variant.value} ({need} MB needed, {budget_text})")
            return VariantChoice(variant, tuple(reasons), budget)
    return VariantChoice(None, tuple(reasons), budget)
