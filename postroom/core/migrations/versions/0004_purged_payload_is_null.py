"""a purged payload is SQL NULL, not the JSON value null

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE documents SET payload = NULL WHERE purged_at IS NOT NULL")


def downgrade() -> None:
    # SQL NULL reads as an absent payload either way; nothing to restore.
    pass
