"""Idempotency keys for submits: a retried submit finds the task its first try stored.

A client may give each task an ``idempotency_key`` (the Python client gives every task a random
one unless told otherwise). The store keeps key → task id for ``KEY_TTL_S`` after the first
submit. A submit with a key it holds stores nothing and answers that task's id; the same key with
a different spec (compared with the stored task: everything but its id and time) is an
``IdempotencyConflict`` (HTTP 409). Keys are one namespace per coordinator: choose random ones
(a UUID), not counters.
"""

from __future__ import annotations

from typing import Final

from fogmesh.store import SubmitKey

__all__ = ["KEY_TTL_S", "submit_key"]

# How long a key is held. A client's retries come within minutes; a day also covers a client
# that crashed and resubmits its batch when it starts again.
KEY_TTL_S: Final = 24 * 3600.0


def submit_key(key: str, now: float) -> SubmitKey:
    return SubmitKey(key, now + KEY_TTL_S)
