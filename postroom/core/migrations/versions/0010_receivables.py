"""receivables: dunning, collection, payment plans, charges, journal and booking exports

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("debit_total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("credit_total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day"),
    )
    op.create_table(
        "dunning_accounts",
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("blocked_until", sa.Date(), nullable=True),
        sa.Column("block_reason", sa.String(length=200), nullable=True),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.PrimaryKeyConstraint("party_id"),
    )
    op.create_table(
        "dunning_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key_date", sa.Date(), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("policy_version", sa.String(length=40), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("letters", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_date"),
    )
    op.create_table(
        "collection_cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=35), nullable=False),
        sa.Column("agency", sa.String(length=40), nullable=False),
        sa.Column("agency_reference", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("principal", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("charges", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("costs", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("received", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("notice_document_id", sa.Uuid(), nullable=True),
        sa.Column("export_file", sa.String(length=500), nullable=True),
        sa.Column("export_sha256", sa.String(length=64), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_document_id"],
            ["documents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    with op.batch_alter_table("collection_cases", schema=None) as batch_op:
        batch_op.create_index("ix_collection_cases_party", ["party_id"], unique=False)

    op.create_table(
        "dunning_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=35), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("pay_by", sa.Date(), nullable=False),
        sa.Column("principal", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("interest", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("fees", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("flat_rate", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["dunning_runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    with op.batch_alter_table("dunning_notices", schema=None) as batch_op:
        batch_op.create_index("ix_dunning_notices_party", ["party_id"], unique=False)

    op.create_table(
        "payment_plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=35), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("down_payment", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("paid_at_start", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    with op.batch_alter_table("payment_plans", schema=None) as batch_op:
        batch_op.create_index("ix_payment_plans_party", ["party_id", "status"], unique=False)

    op.create_table(
        "instalments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["payment_plans.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "sequence", name="uq_instalments_plan_sequence"),
    )
    op.create_table(
        "charges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=35), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("open_amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.create_index("ix_charges_party", ["party_id", "status"], unique=False)

    op.create_table(
        "dunning_steps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("notice_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("open_amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("interest", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["dunning_notices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dunning_steps", schema=None) as batch_op:
        batch_op.create_index("ix_dunning_steps_invoice", ["invoice_id"], unique=False)

    op.create_table(
        "journal_entries",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event", sa.String(length=24), nullable=False),
        sa.Column("voucher", sa.String(length=35), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=True),
        sa.Column("party_reference", sa.String(length=40), nullable=True),
        sa.Column("text", sa.String(length=120), nullable=False),
        sa.Column("export_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["booking_exports.id"],
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.create_index("ix_journal_entries_day", ["day"], unique=False)
        batch_op.create_index("ix_journal_entries_export", ["export_id"], unique=False)

    op.create_table(
        "journal_lines",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account", sa.String(length=12), nullable=False),
        sa.Column("debit", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("credit", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("journal_lines", schema=None) as batch_op:
        batch_op.create_index("ix_journal_lines_entry", ["entry_id"], unique=False)

    with op.batch_alter_table("followups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("notice_document_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_followups_notice_document", "documents", ["notice_document_id"], ["id"]
        )

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_since", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("dunning_level", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dunning_blocked_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("disputed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("collection_case_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("payment_plan_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key("fk_invoices_payment_plan", "payment_plans", ["payment_plan_id"], ["id"])
        batch_op.create_foreign_key(
            "fk_invoices_collection_case", "collection_cases", ["collection_case_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_constraint("fk_invoices_collection_case", type_="foreignkey")
        batch_op.drop_constraint("fk_invoices_payment_plan", type_="foreignkey")
        batch_op.drop_column("payment_plan_id")
        batch_op.drop_column("collection_case_id")
        batch_op.drop_column("disputed")
        batch_op.drop_column("dunning_blocked_until")
        batch_op.drop_column("dunning_level")
        batch_op.drop_column("default_since")

    with op.batch_alter_table("followups", schema=None) as batch_op:
        batch_op.drop_constraint("fk_followups_notice_document", type_="foreignkey")
        batch_op.drop_column("notice_document_id")
        batch_op.drop_column("notified_at")

    with op.batch_alter_table("journal_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_journal_lines_entry")

    op.drop_table("journal_lines")
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_journal_entries_export")
        batch_op.drop_index("ix_journal_entries_day")

    op.drop_table("journal_entries")
    with op.batch_alter_table("dunning_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_dunning_steps_invoice")

    op.drop_table("dunning_steps")
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.drop_index("ix_charges_party")

    op.drop_table("charges")
    op.drop_table("instalments")
    with op.batch_alter_table("payment_plans", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_plans_party")

    op.drop_table("payment_plans")
    with op.batch_alter_table("dunning_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_dunning_notices_party")

    op.drop_table("dunning_notices")
    with op.batch_alter_table("collection_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_collection_cases_party")

    op.drop_table("collection_cases")
    op.drop_table("dunning_runs")
    op.drop_table("dunning_accounts")
    op.drop_table("booking_exports")
