"""Text embedding (hashing trick, fixed keyed hash) and preprocessing."""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from typing import Any

import numpy as np

from fogmesh.agent.workloads._util import check_range, checksum
from fogmesh.errors import InvalidRequest

__all__ = ["embed", "preprocess", "tokenise"]

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenise(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _slot(token: str, dim: int, key: bytes) -> tuple[int, float]:
    # A keyed BLAKE2b, never Python's hash(): salted per process, vectors would not survive a
    # restart.
    digest = hashlib.blake2b(token.encode(), key=key, digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    return value % dim, 1.0 if (value >> 63) & 1 else -1.0


def embed(texts: list[str], dim: int = 256, key: str = "fogmesh-v1") -> dict[str, Any]:
    """Signed hashing-trick embedding of word unigrams and bigrams, sublinear tf, L2-normalised."""
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest("texts must be a list of strings", field="texts")
    check_range("dim", dim, 8, 65536)
    keyb = key.encode()[:64]
    out = np.zeros((len(texts), int(dim)))
    for row, text in enumerate(texts):
        tokens = tokenise(text)
        grams = tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
        counts: dict[str, int] = {}
        for g in grams:
            counts[g] = counts.get(g, 0) + 1
        for gram, count in counts.items():
            index, sign = _slot(gram, int(dim), keyb)
            out[row, index] += sign * (1.0 + math.log(count))
        norm = np.linalg.norm(out[row])
        if norm > 0:
            out[row] /= norm
    vectors = np.round(out, 6).tolist()
    return {"dim": int(dim), "vectors": vectors, "checksum": checksum(vectors)}


def preprocess(
    values: list[float] | None = None, texts: list[str] | None = None, buckets: int = 4
) -> dict[str, Any]:
    """Z-score and min-max normalise ``values`` and bucket them by quantile; tokenise ``texts``."""
    check_range("buckets", buckets, 1, 1000)
    result: dict[str, Any] = {}
    if values is not None:
        if not isinstance(values, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise InvalidRequest("values must be a list of numbers", field="values")
        arr = np.asarray(values, dtype=np.float64)
        if arr.size and not np.all(np.isfinite(arr)):
            raise InvalidRequest("values must be finite", field="values")
        std = float(arr.std()) if arr.size else 0.0
        mean = float(arr.mean()) if arr.size else 0.0
        span = float(arr.max() - arr.min()) if arr.size else 0.0
        edges: Any = np.quantile(arr, np.linspace(0, 1, int(buckets) + 1)[1:-1]) if arr.size else []
        result.update(
            mean=mean,
            std=std,
            zscore=np.round((arr - mean) / std if std > 0 else arr * 0.0, 6).tolist(),
            minmax=np.round((arr - arr.min()) / span if span > 0 else arr * 0.0, 6).tolist(),
            buckets=np.searchsorted(edges, arr, side="right").astype(int).tolist(),
        )
    if texts is not None:
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise InvalidRequest("texts must be a list of strings", field="texts")
        result["tokens"] = [tokenise(t) for t in texts]
    result["checksum"] = checksum(result)
    return result
