"""Incoming SMS parts kept until their message is whole, and concatenation references per destination.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sms_mo_groups",
        sa.Column("id", _ID, nullable=False),
        sa.Column("source", sa.String(length=21), nullable=False),
        sa.Column("destination", sa.String(length=21), nullable=False),
        sa.Column("reference", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_mo_groups")),
        sa.UniqueConstraint("source", "destination", "reference", "total", name="uq_sms_mo_groups_key"),
    )
    op.create_index("ix_sms_mo_groups_first_at", "sms_mo_groups", ["first_at"])
    op.create_table(
        "sms_mo_parts",
        sa.Column("group_id", _ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("short_message", sa.LargeBinary(), nullable=False),
        sa.Column("data_coding", sa.Integer(), nullable=False),
        sa.Column("esm_class", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["sms_mo_groups.id"],
            name=op.f("fk_sms_mo_parts_group_id_sms_mo_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "seq", name=op.f("pk_sms_mo_parts")),
    )
    op.create_table(
        "sms_concat_counters",
        sa.Column("destination", sa.String(length=21), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("destination", name=op.f("pk_sms_concat_counters")),
    )


def downgrade() -> None:
    op.drop_table("sms_concat_counters")
    op.drop_table("sms_mo_parts")
    op.drop_index("ix_sms_mo_groups_first_at", table_name="sms_mo_groups")
    op.drop_table("sms_mo_groups")
