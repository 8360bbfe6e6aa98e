"""pieces of a print batch the letter shop rejected, counted while it is acknowledged in steps

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("print_batches", sa.Column("rejected", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("print_batches", "rejected")
