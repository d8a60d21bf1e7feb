"""Shared constants and helpers for the twin tests."""

from __future__ import annotations

from pathlib import Path

START = 1_793_000_000.0  # 2026-10-26 09:33 UTC, a Monday


def disk_bytes(db: Path) -> bytes:
    """Everything SQLite keeps for this database on disk: the file, its WAL and shm."""
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(str(db) + suffix)
        if path.exists():
            out += path.read_bytes()
    return out
