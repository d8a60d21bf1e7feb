"""``open_store``: one string (or nothing) to a ready, migrated store."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from fogmesh.config import load_settings

from .base import Store
from .memory import MemoryStore
from .sql import SqliteSync, SqlStore

__all__ = ["DEFAULT_DB_NAME", "open_store"]

DEFAULT_DB_NAME = "fogmesh.db"


async def open_store(
    url_or_path: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    group_commit: bool = True,
    sqlite_synchronous: SqliteSync = "FULL",
) -> Store:
    """Open the store ``url_or_path`` names.

    * ``None``: the embedded default, SQLite file ``fogmesh.db`` in ``data_dir`` (default: the
      per-user data directory; ``FOGMESH_HOME`` overrides it).
    * ``"memory"`` or ``"memory://"``: a ``MemoryStore`` (nothing is kept).
    * a URL (``sqlite:///path``, ``postgresql://user@host/db``; the async drivers are picked).
    * anything else: a path to a SQLite file.
    """
    if url_or_path is None:
        home = Path(data_dir) if data_dir is not None else load_settings().home
        return await _sqlite_file(home / DEFAULT_DB_NAME, group_commit, sqlite_synchronous)
    text = os.fspath(url_or_path)
    if text in ("memory", "memory://", ":memory:"):
        return MemoryStore()
    if "://" in text:
        return await SqlStore.open(
            text, group_commit=group_commit, sqlite_synchronous=sqlite_synchronous
        )
    return await _sqlite_file(Path(text), group_commit, sqlite_synchronous)


async def _sqlite_file(path: Path, group_commit: bool, synchronous: SqliteSync) -> SqlStore:
    path = await asyncio.to_thread(_prepare_dir, path)
    return await SqlStore.open(
        f"sqlite+aiosqlite:///{path}", group_commit=group_commit, sqlite_synchronous=synchronous
    )


def _prepare_dir(path: Path) -> Path:
    path = path.expanduser().resolve()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
