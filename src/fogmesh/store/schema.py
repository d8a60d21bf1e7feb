"""The SQL schema as SQLAlchemy Core tables: what the code queries.

The migrations in ``_migrations/versions`` create the same schema step by step; a test compares a
migrated database with these tables, so the two cannot drift apart.

Columns that queries filter or sort on are real columns; the rest of a task (resources,
constraints, payload) is one JSON document that never changes after submit.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "METADATA",
    "clusters",
    "device_models",
    "devices",
    "idempotency_keys",
    "kv",
    "spent_tickets",
    "task_attempts",
    "tasks",
]

METADATA = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
    }
)

tasks = Table(
    "tasks",
    METADATA,
    Column("id", String(64), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("priority", Integer, nullable=False),
    # Sorting on -priority keeps the queue index ascending in every column, which both engines
    # can walk in order without a sort step.
    Column("neg_priority", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("assigned_device", String(128), nullable=True),
    Column("deadline", Double, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("scheduled_at", Double, nullable=True),
    Column("started_at", Double, nullable=True),
    Column("finished_at", Double, nullable=True),
    Column("spec", Text, nullable=False),
    Column("result", Text, nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "state", "neg_priority", "created_at", "id"),
    Index(None, "state", "created_at", "id"),
    Index(None, "state", "id"),
    Index(None, "assigned_device", "state"),
    Index(None, "state", "deadline"),
)

task_attempts = Table(
    "task_attempts",
    METADATA,
    Column(
        "task_id",
        String(64),
        ForeignKey("tasks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("attempt", Integer, primary_key=True),
    Column("device_id", String(128), nullable=False),
    Column("placed_at", Double, nullable=False),
    Column("ended_at", Double, nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("reason", Text, nullable=True),
)

devices = Table(
    "devices",
    METADATA,
    Column("id", String(128), primary_key=True),
    Column("device_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("profile", Text, nullable=False),
    Column("labels", Text, nullable=False),
    Column("registered_at", Double, nullable=False),
    Column("last_heartbeat", Double, nullable=False),
    Index(None, "status", "last_heartbeat"),
)

device_models = Table(
    "device_models",
    METADATA,
    Column(
        "device_id",
        String(128),
        ForeignKey("devices.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("model_id", String(256), primary_key=True),
    Column("deployed_at", Double, nullable=False),
)

clusters = Table(
    "clusters",
    METADATA,
    Column("id", String(128), primary_key=True),
    Column("head", String(128), nullable=True),
    Column("term", Integer, nullable=False),
    Column("members", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
)

kv = Table(
    "kv",
    METADATA,
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row per spent one-shot ticket, until it expires: an enrolment adds one row instead of
# rewriting a growing list, and the expiry index makes forgetting old ones cheap.
spent_tickets = Table(
    "spent_tickets",
    METADATA,
    Column("ticket_id", String(256), primary_key=True),
    Column("expires_at", Double, nullable=False),
    # The device (id derived from its identity key) that spent a join token: it may present the
    # token again (its Enrolled reply was lost); anyone else is refused. NULL: no holder (REST).
    Column("holder", String(128), nullable=True),
    Index(None, "expires_at"),
)

# A client's idempotency key → the task first submitted with it, until the key expires: a
# submit retried after a lost reply finds its task instead of storing a second one. (Whether a
# retry is the same task is decided by comparing it with that task, on the rare retry, rather
# than by hashing every submit.)
idempotency_keys = Table(
    "idempotency_keys",
    METADATA,
    Column("key", String(256), primary_key=True),
    Column(
        "task_id",
        String(64),
        ForeignKey("tasks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("expires_at", Double, nullable=False),
    Index(None, "expires_at"),
)
