"""Idempotency keys for submits: a retried submit finds the task its first try stored.

A client may give each task an ``idempotency_key`` (the Python client gives every task a random
one unless told otherwise). The store keeps key → task id, with a fingerprint of the task's spec,
for ``KEY_TTL_S`` after the first submit. A submit with a key it holds stores nothing and answers
that task's id; the same key with a different spec is an ``IdempotencyConflict`` (HTTP 409).
Keys are one namespace per coordinator: choose random ones (a UUID), not counters.
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from fogmesh.fog.tasks import Task
from fogmesh.store import SubmitKey

__all__ = ["KEY_TTL_S", "fingerprint", "submit_key"]

# How long a key is held. A client's retries come within minutes; a day also covers a client
# that crashed and resubmits its batch when it starts again.
KEY_TTL_S: Final = 24 * 3600.0

# Sorted keys: the same spec with its payload's fields in another order is the same spec.
_encode = msgspec.json.Encoder(order="sorted").encode


def fingerprint(task: Task) -> str:
    """SHA-256 (hex) of what a submit said about the task: its id and time are left out, so
    the retry of a submit (a new id, a later time) has the same fingerprint."""
    spec = msgspec.structs.replace(task, id="", created_at=0.0)
    return hashlib.sha256(_encode(spec)).hexdigest()


def submit_key(key: str, task: Task, now: float) -> SubmitKey:
    return SubmitKey(key, fingerprint(task), now + KEY_TTL_S)
