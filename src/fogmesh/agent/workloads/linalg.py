"""Matrix work: a seeded n×n product."""

from __future__ import annotations

from typing import Any

import numpy as np

from fogmesh.agent.workloads._util import check_range, checksum

__all__ = ["matmul"]


def matmul(n: int = 128, seed: int = 0) -> dict[str, Any]:
    """C = A·B for seeded standard-normal A, B; returns trace, Frobenius norm and a checksum.

    The checksum covers C rounded to 6 decimals, so different BLAS summation orders agree.
    """
    check_range("n", n, 1, 8192)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((int(n), int(n)))
    b = rng.standard_normal((int(n), int(n)))
    c = a @ b
    rounded = np.round(c, 6)
    return {
        "n": int(n),
        "trace": float(np.trace(c)),
        "frobenius": float(np.linalg.norm(c)),
        "checksum": checksum(rounded.ravel()[:: max(1, rounded.size // 4096)].tolist()),
    }
