"""ward_alert_actions: acknowledge / escalate actions on ward alerts (who, when, which record and alert).

Self-contained (no foreign keys); each action also appends an ``audit_events`` row in the same
transaction (``cxr_model.vitals.alert_store.record_action``).

Revision ID: 0003_ward_alert_actions
Revises: 0002_audit_events
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_ward_alert_actions"
down_revision = "0002_audit_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ward_alert_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewer", sa.String(120), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(120), nullable=False),
        sa.Column("alert_kind", sa.String(40), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_ward_alert_actions_record_id", "ward_alert_actions", ["record_id"])
    op.create_index("ix_ward_alert_actions_alert_id", "ward_alert_actions", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_ward_alert_actions_alert_id", table_name="ward_alert_actions")
    op.drop_index("ix_ward_alert_actions_record_id", table_name="ward_alert_actions")
    op.drop_table("ward_alert_actions")
