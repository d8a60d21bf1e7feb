"""Spent one-shot tickets get a table of their own (one row each, indexed by expiry).

Until now they were one JSON map in ``kv`` that every enrolment rewrote whole; the map's
unexpired entries move into the table.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
import math

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OLD_KEY = "security.spent_one_shot_tickets"


def upgrade() -> None:
    table = op.create_table(
        "spent_tickets",
        sa.Column("ticket_id", sa.String(256), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_spent_tickets"),
    )
    op.create_index("ix_spent_tickets_expires_at", "spent_tickets", ["expires_at"])
    kv = sa.table("kv", sa.column("key", sa.String), sa.column("value", sa.Text))
    bind = op.get_bind()
    value = bind.execute(sa.select(kv.c.value).where(kv.c.key == _OLD_KEY)).scalar()
    if value is None:
        return
    try:
        spent = json.loads(value)
    except ValueError:
        spent = {}
    rows = [
        {"ticket_id": str(k), "expires_at": float(v)}
        for k, v in (spent.items() if isinstance(spent, dict) else ())
        if isinstance(v, int | float) and math.isfinite(v) and 0 < len(str(k)) <= 256
    ]
    if rows:
        assert table is not None
        op.bulk_insert(table, rows)
    bind.execute(sa.delete(kv).where(kv.c.key == _OLD_KEY))


def downgrade() -> None:
    # Back into the one map the previous version reads, so no spent ticket becomes usable.
    bind = op.get_bind()
    spent = sa.table(
        "spent_tickets", sa.column("ticket_id", sa.String), sa.column("expires_at", sa.Double)
    )
    kv = sa.table("kv", sa.column("key", sa.String), sa.column("value", sa.Text))
    rows = bind.execute(sa.select(spent.c.ticket_id, spent.c.expires_at)).all()
    if rows:
        bind.execute(sa.delete(kv).where(kv.c.key == _OLD_KEY))
        value = json.dumps({r.ticket_id: r.expires_at for r in rows})
        bind.execute(sa.insert(kv).values(key=_OLD_KEY, value=value))
    op.drop_index("ix_spent_tickets_expires_at", table_name="spent_tickets")
    op.drop_table("spent_tickets")
