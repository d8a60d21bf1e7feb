"""Tiny and synthetic workloads: round-trip probes and limit exercisers."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from fogmesh.agent.workloads._util import check_range, checksum

__all__ = ["allocate", "blob", "burn", "echo"]


def echo(x: Any = None) -> dict[str, Any]:
    """Return ``x`` unchanged: measures the runner's own overhead."""
    return {"x": x}


def burn(seconds: float = 1.0) -> dict[str, Any]:
    """Busy-loop for ``seconds`` of wall time; a CPU cap shows as cpu_s/wall_s < 1.

    The only workload whose result depends on the machine: ``rounds`` counts the CPU it got.
    """
    check_range("seconds", seconds, 0.0, 3600.0)
    end = time.monotonic() + seconds
    acc = 0
    n = 0
    while time.monotonic() < end:
        for i in range(1000):
            acc = (acc * 31 + i) & 0xFFFFFFFF
        n += 1
    return {"rounds": n, "state": acc}


def allocate(mb: int = 16) -> dict[str, Any]:
    """Allocate and touch ``mb`` MiB; fails with a memory error above the task's cap."""
    check_range("mb", mb, 0, 1 << 20)
    block = bytearray(int(mb) << 20)
    for i in range(0, len(block), 4096):  # touch every page so it is really resident
        block[i] = i & 0xFF
    return {"mb": int(mb), "checksum": checksum(sum(block[::4096]))}


def blob(kib: int = 1536, seed: int = 0) -> dict[str, Any]:
    """``kib`` KiB of deterministic hex text: a result too big to travel inline (over 1 MiB it
    goes to the coordinator as an artefact). Anyone can recompute it from ``kib`` and ``seed``."""
    check_range("kib", kib, 1, 60 * 1024)
    block = hashlib.sha256(f"fogmesh-blob-{seed}".encode()).hexdigest()
    need = int(kib) * 1024
    data = (block * (need // len(block) + 1))[:need]
    return {"kib": int(kib), "seed": seed, "data": data}
