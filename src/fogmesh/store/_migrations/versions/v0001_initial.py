"""Initial schema: tasks with their attempts, devices with deployed models, clusters, kv.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("neg_priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("assigned_device", sa.String(128), nullable=True),
        sa.Column("deadline", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("scheduled_at", sa.Double(), nullable=True),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_index(
        "ix_tasks_state_neg_priority_created_at_id",
        "tasks",
        ["state", "neg_priority", "created_at", "id"],
    )
    op.create_index("ix_tasks_state_created_at_id", "tasks", ["state", "created_at", "id"])
    op.create_index("ix_tasks_state_id", "tasks", ["state", "id"])
    op.create_index("ix_tasks_assigned_device_state", "tasks", ["assigned_device", "state"])
    op.create_index("ix_tasks_state_deadline", "tasks", ["state", "deadline"])

    op.create_table(
        "task_attempts",
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("placed_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name="fk_task_attempts_task_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", "attempt", name="pk_task_attempts"),
    )

    op.create_table(
        "devices",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("device_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.Double(), nullable=False),
        sa.Column("last_heartbeat", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
    )
    op.create_index("ix_devices_status_last_heartbeat", "devices", ["status", "last_heartbeat"])

    op.create_table(
        "device_models",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("deployed_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_device_models_device_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", "model_id", name="pk_device_models"),
    )

    op.create_table(
        "clusters",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("head", sa.String(128), nullable=True),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("members", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_clusters"),
    )

    op.create_table(
        "kv",
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_kv"),
    )


def downgrade() -> None:
    for table in ("kv", "clusters", "device_models", "devices", "task_attempts", "tasks"):
        op.drop_table(table)
