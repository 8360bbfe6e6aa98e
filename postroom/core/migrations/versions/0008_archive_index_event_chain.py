"""auditors: the archive index, the hash-chained event log and its head, Z3 exports

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "archive_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("document_type", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=35), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("order_reference", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("net_total", sa.Numeric(14, 2), nullable=True),
        sa.Column("tax_total", sa.Numeric(14, 2), nullable=True),
        sa.Column("gross_total", sa.Numeric(14, 2), nullable=True),
        sa.Column("archive_key", sa.String(length=400), nullable=False),
        sa.Column("location", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("has_einvoice", sa.Boolean(), nullable=False),
        sa.Column("retention_class", sa.String(length=16), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("archive_key"),
    )
    for name, columns in (
        ("ix_archive_entries_issued", ["issue_date", "id"]),
        ("ix_archive_entries_number", ["number"]),
        ("ix_archive_entries_customer", ["customer_id"]),
        ("ix_archive_entries_order", ["order_reference"]),
        ("ix_archive_entries_gross", ["gross_total"]),
        ("ix_archive_entries_retention", ["retain_until"]),
    ):
        op.create_index(name, "archive_entries", columns)
    op.create_table(
        "archive_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "archive_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "archive_exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.String(length=64), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("include_pdfs", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("documents_total", sa.Integer(), nullable=False),
        sa.Column("documents_done", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("archive_key", sa.String(length=400), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error_detail", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("archive_exports")
    op.drop_table("archive_chain_head")
    op.drop_table("archive_events")
    op.drop_table("archive_entries")
