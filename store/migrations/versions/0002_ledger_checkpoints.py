"""Ledger checkpoints and a covering index, so a balance no longer sums an owner's whole ledger.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_checkpoints",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("ledger_id", _ID, nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_ledger_checkpoints_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "ledger_id", name=op.f("pk_ledger_checkpoints")),
    )
    op.create_index("ix_ledger_account_entry", "ledger", ["account_id", "id", "amount"])
    op.drop_index("ix_ledger_account_id", table_name="ledger")


def downgrade() -> None:
    op.create_index("ix_ledger_account_id", "ledger", ["account_id"])
    op.drop_index("ix_ledger_account_entry", table_name="ledger")
    op.drop_table("ledger_checkpoints")
