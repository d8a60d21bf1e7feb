"""A numpy training step: logistic regression by gradient descent on seeded synthetic data."""

from __future__ import annotations

from typing import Any

import numpy as np

from fogmesh.agent.workloads._util import check_range, checksum

__all__ = ["train_logreg"]


def _loss(w: Any, x: Any, y: Any) -> float:
    z = x @ w
    # log(1 + e^z) - y·z, written stably
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def train_logreg(
    samples: int = 512, features: int = 16, steps: int = 50, lr: float = 0.5, seed: int = 0
) -> dict[str, Any]:
    """Fit ``steps`` full-batch gradient steps; returns loss before/after and accuracy."""
    check_range("samples", samples, 2, 1_000_000)
    check_range("features", features, 1, 10_000)
    check_range("steps", steps, 0, 100_000)
    check_range("lr", lr, 1e-6, 100.0)
    rng = np.random.default_rng(seed)
    true_w = rng.standard_normal(int(features))
    x = rng.standard_normal((int(samples), int(features)))
    y = (x @ true_w + 0.1 * rng.standard_normal(int(samples)) > 0).astype(np.float64)
    w = np.zeros(int(features))
    before = _loss(w, x, y)
    for _ in range(int(steps)):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        w -= lr * (x.T @ (p - y)) / len(y)
    after = _loss(w, x, y)
    accuracy = float(np.mean(((x @ w) > 0) == (y > 0.5)))
    return {
        "loss_before": before,
        "loss_after": after,
        "accuracy": accuracy,
        "steps": int(steps),
        "checksum": checksum(np.round(w, 6).tolist()),
    }
