"""A spent join token names the device that spent it; submits can carry idempotency keys.

* ``spent_tickets.holder``: the device id that spent a one-shot enrolment ticket, so the same
  device may enrol again with it when the ``Enrolled`` reply was lost. Rows spent before this
  version have no holder (NULL) and stay refused to everyone, as they were.
* ``idempotency_keys``: a client's key → the task first submitted with it, until the key
  expires.

Downgrade drops both; no spent ticket becomes usable (the table and its ids stay), and tasks
keep existing (only the keys that pointed at them go).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spent_tickets") as batch:
        batch.add_column(sa.Column("holder", sa.String(128), nullable=True))
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name="fk_idempotency_keys_task_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("spent_tickets") as batch:
        batch.drop_column("holder")
