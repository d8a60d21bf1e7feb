"""Durable coordinator state: tasks with leases, devices, clusters.

``open_store()`` gives the embedded default (SQLite in the data directory); a PostgreSQL URL
gives the scale-out store; ``MemoryStore`` is the same contract without a disk.
"""

from __future__ import annotations

from .base import (
    ClusterRecord,
    DeviceRecord,
    DeviceStatus,
    PendingOrder,
    Placement,
    Store,
    SubmitKey,
    profile_from_dict,
)
from .factory import DEFAULT_DB_NAME, open_store
from .memory import MemoryStore
from .migrate import head_revision
from .sql import SqlStore, normalise_url

__all__ = [
    "DEFAULT_DB_NAME",
    "ClusterRecord",
    "DeviceRecord",
    "DeviceStatus",
    "MemoryStore",
    "PendingOrder",
    "Placement",
    "SqlStore",
    "Store",
    "SubmitKey",
    "head_revision",
    "normalise_url",
    "open_store",
    "profile_from_dict",
]
