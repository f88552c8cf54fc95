"""review_decisions.site_profile / site_profile_sha256: which site profile produced the call a reviewer saw.

Both nullable, added without a default, so every row saved before this revision keeps its values
and reads NULL here: "not recorded". Rows saved from now on hold the profile's name and the SHA-256
of its files, or ``""`` and NULL for the bundled model as is (``cxr_model.review_store``).

Revision ID: 0004_decision_site_profile
Revises: 0003_ward_alert_actions
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_decision_site_profile"
down_revision = "0003_ward_alert_actions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_decisions") as batch:
        batch.add_column(sa.Column("site_profile", sa.String(64), nullable=True))
        batch.add_column(sa.Column("site_profile_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_decisions") as batch:
        batch.drop_column("site_profile_sha256")
        batch.drop_column("site_profile")
