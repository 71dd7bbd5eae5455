"""jobs: indexes to count a tenant's unfinished jobs (MAX_TENANT_BACKLOG)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_org_id_status", "jobs", ["org_id", "status"])
    op.create_index("ix_jobs_user_id_status", "jobs", ["user_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_jobs_user_id_status", table_name="jobs")
    op.drop_index("ix_jobs_org_id_status", table_name="jobs")
