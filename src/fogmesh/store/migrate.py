"""Versioned schema: Alembic scripts shipped in the package, applied when a store opens.

The caller holds the schema lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped
advisory lock) and one transaction, so two processes opening a fresh database at once cannot both
create it, and a failed upgrade leaves the previous version intact (both engines run DDL inside
the transaction).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from fogmesh.errors import MigrationError

__all__ = ["SCRIPT_LOCATION", "current_revision", "head_revision", "upgrade_to_head"]

SCRIPT_LOCATION = Path(__file__).with_name("_migrations")


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The schema version this code expects."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise MigrationError("no migration scripts found")
    return head


def current_revision(connection: Connection) -> str | None:
    """The database's schema version, ``None`` for an empty database."""
    heads = MigrationContext.configure(connection).get_current_heads()
    if len(heads) > 1:
        raise MigrationError(f"database has several schema heads: {', '.join(heads)}")
    return heads[0] if heads else None


def upgrade_to_head(connection: Connection) -> str:
    """Bring the schema to the head revision; returns it.

    A database from a newer fogmesh (a revision these scripts do not know) → ``MigrationError``:
    guessing would risk writing rows that code cannot read back.
    """
    cfg = _config(connection)
    script = ScriptDirectory.from_config(cfg)
    current = current_revision(connection)
    head = head_revision()
    if current == head:
        return head
    if current is not None:
        known = {rev.revision for rev in script.walk_revisions()}
        if current not in known:
            raise MigrationError(
                f"database schema version {current!r} is newer than this fogmesh knows "
                f"(latest {head!r}); upgrade fogmesh",
                current=current,
                head=head,
            )
    try:
        command.upgrade(cfg, "head")
    except (CommandError, SQLAlchemyError) as exc:
        raise MigrationError(f"schema upgrade {current} → {head} failed: {exc}") from exc
    return head
