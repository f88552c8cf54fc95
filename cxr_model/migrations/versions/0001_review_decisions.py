"""review_decisions: the reviewer-decision table exactly as the pre-migration code created it.

A database made before migrations existed holds this table and no ``alembic_version``;
``cxr_model.db.upgrade`` stamps it at this revision instead of running it.

Revision ID: 0001_review_decisions
Revises:
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_review_decisions"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewer", sa.String(120), nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(50), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("cam_method", sa.String(40), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_review_decisions_image_sha256", "review_decisions", ["image_sha256"])


def downgrade() -> None:
    op.drop_index("ix_review_decisions_image_sha256", table_name="review_decisions")
    op.drop_table("review_decisions")
